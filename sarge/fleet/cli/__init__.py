"""The ``sarge-fleet`` command line: parse, call one function of :mod:`sarge.fleet`,
print, exit. Errors are one line on stderr (``sarge-fleet: ...``) and a non-zero exit
status: 2 for bad input (an option, the fleet file), 1 for what failed on the hosts.

:mod:`.group` (the click group and the fleet file), :mod:`.rollouts` (deploy,
rollback), :mod:`.hosts` (status, run, config, bootstrap), :mod:`.output` (everything
printed), and :func:`main`, the boundary.
"""

from __future__ import annotations

import os
import sys

import click

from ...errors import SargeError
from .group import fleet_cli
from .output import echo


def main(argv=None) -> None:
    """Entry point of ``sarge-fleet``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        rv = fleet_cli.main(args=argv, prog_name="sarge-fleet", standalone_mode=False)
    except (SargeError, click.ClickException, click.Abort, KeyboardInterrupt) as exc:
        message, status = _failure(exc)
        echo(f"sarge-fleet: {message}", err=True)
        sys.exit(status)
    except BrokenPipeError:  # `sarge-fleet status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _failure(exc):
    """(the one line, the exit status) of what ended a command."""
    if isinstance(exc, SargeError):
        return " ".join(str(exc).split()), exc.exit_code
    if isinstance(exc, click.UsageError):
        command = exc.ctx.info_name if exc.ctx is not None and exc.ctx.parent else ""
        hint = f" (see `sarge-fleet {command} --help`)".replace("  ", " ")
        return exc.format_message() + hint, 2
    if isinstance(exc, click.ClickException):
        return exc.format_message(), exc.exit_code
    return "interrupted", 130


__all__ = ["fleet_cli", "main"]
