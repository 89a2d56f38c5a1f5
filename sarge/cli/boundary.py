"""The boundary: every error becomes one line on stderr and an exit status (see
:mod:`sarge.cli`); a bug's traceback goes to the home's ``var/log/sarge.log``."""

from __future__ import annotations

import os
import sys

import click

from ..errors import SargeError
from .context import Context
from .group import cli
from .output import echo
from .packaging import tools


def main(argv=None, make_home=None) -> None:
    """Entry point: run the command line and turn errors into one line and an exit status.

    ``make_home(path)`` makes the home the commands work on (default: a
    :class:`~sarge.home.Home`); tests pass their own.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    context = Context(make_home=make_home)
    try:
        rv = cli.main(args=argv, prog_name="sarge", standalone_mode=False, obj=context)
    except SargeError as exc:
        echo(f"sarge: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        names, ctx = [], exc.ctx
        while ctx is not None and ctx.parent is not None:  # `service add`: both words
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        command = " ".join(names)
        home = "" if exc.ctx is not None and exc.ctx.find_root().command is tools else "HOME "
        hint = f" (see `sarge {home}{command} --help`)".replace("  ", " ")
        echo(f"sarge: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        echo(f"sarge: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        echo("sarge: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except RecursionError:
        # Python's parsers (json, tomllib) recurse once per level of what they read.
        echo("sarge: something this command read is nested too deeply (thousands of "
             "levels of [ or {); check what it was given, and the files it names", err=True)
        sys.exit(1)
    except BrokenPipeError:
        # The reader went away (`sarge ... | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        # Last resort: what no command foresaw (a permission, a full disk) is still one line.
        where = f" ({exc.filename})" if exc.filename else ""
        echo(f"sarge: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug is one line, and logged
        internal_error(exc, context, argv)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def internal_error(exc: Exception, context: Context, argv) -> None:
    """A bug: one line for the operator, the traceback in the home's log (and on stderr
    with ``SARGE_DEBUG=1``)."""
    import traceback

    trace = "".join(traceback.format_exception(exc))
    debug = os.environ.get("SARGE_DEBUG") == "1"
    if debug:
        echo(trace, err=True, nl=False)
    logged = _log_traceback(context.path, argv, trace)
    message = " ".join(str(exc).split())  # one line, whatever the message holds
    where = (f"the traceback is in {_log_path(context.path)}" if logged
             else "the traceback is above" if debug
             else "run it again with SARGE_DEBUG=1 to see the traceback")
    echo(f"sarge: internal error: {type(exc).__name__}"
         f"{': ' + message if message else ''}; {where} (a bug in sarge: please report it)",
         err=True)


def _log_path(path) -> str | None:
    """The home's ``var/log/sarge.log``, when ``path`` is a home that has that folder."""
    if not path:
        return None
    log_dir = os.path.join(os.path.abspath(path), "var", "log")  # as Home.log_action
    return os.path.join(log_dir, "sarge.log") if os.path.isdir(log_dir) else None


def _log_traceback(path, argv, trace: str) -> bool:
    """Append ``trace`` to the home's ``sarge.log`` under a line naming the command, each of
    its lines indented (a line at the margin stays one action); False when it cannot.
    The log is what it is for ``log_action``: 0644 in ``var/log`` (0750)."""
    from ..instance import utcnow

    log = _log_path(path)
    if log is None:
        return False
    # The command's name only: its arguments may hold secrets (config KEY=VALUE).
    command = next((word for word in argv if word in cli.commands), "")
    lines = [f"{utcnow()} pid={os.getpid()} uid={os.getuid()} internal-error {command}".rstrip()]
    lines += ["  " + line for line in trace.splitlines()]
    text = "".join(line.replace("\r", " ") + "\n" for line in lines)
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except (OSError, ValueError):  # a full disk, a read-only home: the one line still goes out
        return False
    return True
