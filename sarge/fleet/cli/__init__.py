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
    except SargeError as exc:
        echo(f"sarge-fleet: {' '.join(str(exc).split())}", err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.info_name if exc.ctx is not None and exc.ctx.parent else ""
        hint = f" (see `sarge-fleet {command} --help`)".replace("  ", " ")
        echo(f"sarge-fleet: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        echo(f"sarge-fleet: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        echo("sarge-fleet: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


__all__ = ["fleet_cli", "main"]
