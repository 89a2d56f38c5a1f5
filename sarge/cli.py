"""The ``sarge`` command line: parse, call one core function, print, exit.

``sarge HOME COMMAND ...``; the ``bin/sarge`` shortcut of a home fills in HOME.
Errors are one line on stderr (``sarge: ...``) and a non-zero exit status:

- 2 for a usage error: click's (an unknown command or option, a missing
  argument) and :class:`~sarge.errors.UsageError` (a bad name, id, JSON,
  ``--listen`` value);
- 7 when supervisord is not running (:class:`~sarge.errors.SupervisordNotRunning`),
  as ``supervisorctl`` exits;
- 1 for everything else: a refused or failed deploy, a failure, a bug.

Each :class:`~sarge.errors.SargeError` carries its status as ``exit_code``. A bug (an
exception no command foresaw) is one line too, ``sarge: internal error: ...``; its
traceback is appended to the home's ``var/log/sarge.log``, and printed with
``SARGE_DEBUG=1``. Everything printed shows control characters as ``?`` (:func:`_echo`).
"""

from __future__ import annotations

import json
import os
import sys

import click

from .errors import SargeError
from .logs import printable


class Context:
    """What the commands share: the home at ``path``, made on first use by ``make_home``
    (default: a :class:`~sarge.home.Home`). :func:`main` makes one and hands it to the
    click group, which fills in ``path``; so it still knows the home when a command
    fails."""

    def __init__(self, path=None, make_home=None):
        self.path = path
        self._make_home = make_home or _default_make_home
        self._home = None

    @property
    def home(self):
        if self._home is None:
            self._home = self._make_home(self.path)
        return self._home


def _default_make_home(path):
    from .home import Home

    return Home(path)


pass_home = click.make_pass_decorator(Context)


def _echo(text="", err: bool = False, nl: bool = True) -> None:
    """Print ``text`` (stderr with ``err``) with its control characters, tab and newline
    excepted, shown as ``?``: what sarge prints carries what an app chose (a Procfile's
    commands, the names of its files, its log), whose escape sequences must not drive
    the operator's terminal. Everything this module prints goes through here."""
    click.echo(printable(str(text)), err=err, nl=nl)


def _echo_json(data) -> None:
    _echo(json.dumps(data, indent=2, sort_keys=True))


def _note(message: str) -> None:
    _echo(message, err=True)


#: Where sarge looks for nginx when it is not on PATH (as the front-end does).
NGINX_FOLDERS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")


def _nginx_version(search_path=None) -> str:
    """What ``nginx -v`` says (``nginx version: nginx/1.22.1``) and which nginx that is,
    or why there is no answer: one line, never an exception."""
    import shutil
    import subprocess

    if search_path is None:
        search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), *NGINX_FOLDERS])
    found = shutil.which("nginx", path=search_path)
    if found is None:
        return "nginx: not found"
    try:
        result = subprocess.run([found, "-v"], stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, errors="replace", timeout=5)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nginx: {found} -v failed ({getattr(exc, 'strerror', None) or exc})"
    said = (result.stderr.strip() or result.stdout.strip()).splitlines()
    if result.returncode != 0 or not said:
        return f"nginx: {found} -v failed (exit status {result.returncode})"
    return f"{said[0]} ({found})"


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _print_version(ctx, param, value) -> None:
    if not value or ctx.resilient_parsing:
        return
    _echo(f"sarge {_version('sarge-deploy')}")
    _echo(f"supervisor {_version('supervisor')}")
    _echo(_nginx_version())
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("home", type=click.Path(file_okay=False, dir_okay=True))
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version,
              help="Print the versions of sarge, supervisor and nginx, and exit.")
@click.pass_context
def cli(ctx, home):
    """Run Python web apps under supervisord in the home folder HOME.

    Start with `sarge HOME init`, then use HOME/bin/sarge, which fills in HOME.
    """
    if isinstance(ctx.obj, Context):  # from main()
        ctx.obj.path = home
    else:  # cli.main(obj=make_home), or nothing
        ctx.obj = Context(home, ctx.obj if callable(ctx.obj) else None)


@cli.command()
@click.option("--logrotate", "logrotate", is_flag=True,
              help="Print a logrotate snippet for the home's logs instead.")
@click.option("--user", default="", metavar="NAME",
              help="Who runs the apps when supervisord runs as root: written to a new "
                   "etc/sarge.toml as [users] default (default: none, and nothing runs).")
@pass_home
def init(ctx, logrotate, user):
    """Create the home folder (or complete it; nothing existing is lost)."""
    if logrotate:
        _echo(ctx.home.logrotate(), nl=False)
        return
    changed = ctx.home.init(user=user)
    home = ctx.home.path
    if changed:
        _note(f"sarge home ready in {home}")
    else:
        _note(f"{home} is already a complete sarge home; nothing changed")
    _note(f"start its supervisord with {home}/bin/supervisord, then try {home}/bin/sarge --help")


@cli.command()
@click.argument("description", metavar="JSON")
@pass_home
def new(ctx, description):
    """Create an instance from a JSON description and print its id.

    \b
    Example: sarge HOME new '{"application_name": "web"}'
    The instance gets a folder HOME/ID, a port, and a supervisord program that
    runs HOME/ID/server once started. It is not started.
    """
    from .instance import parse_new_request

    request = parse_new_request(description)
    _echo(ctx.home.lifecycle.new(request["application_name"]).id)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_home
def list_(ctx, as_json):
    """List the instances with their app, port, state and role.

    The role is "current" for the instance an app's front-end routes to, and
    "previous" for those kept for rollback.
    """
    from .status import listing

    rows, supervisord_running = listing(ctx.home)
    if not supervisord_running:
        _note("sarge: supervisord is not running; states are unknown "
              f"(start it with {ctx.home.path}/bin/supervisord)")
    if as_json:
        _echo_json({"instances": rows})
        return
    _table(["ID", "APP", "PORT", "STATE", "ROLE", "CREATED"],
           [[r["id"], r["application_name"], r["port"], r["state"], r["role"] or "-",
             r["created"]] for r in rows])


def _table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header] + rows:
        _echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _size(n) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024


@cli.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_home
def status(ctx, instance_id, as_json):
    """Show state, pid, user, uptime, memory and CPU of one instance or of all.

    Memory (RSS) and CPU count the instance's whole process tree.
    """
    from .status import status as core_status

    records = core_status(ctx.home, instance_id)
    if as_json:
        _echo_json(records[0] if instance_id is not None else {"instances": records})
        return
    _table(
        ["ID", "STATE", "PID", "USER", "UPTIME", "MEMORY", "CPU%", "PROCS"],
        [[r["id"], r["state"], r["pid"] or "-", r["user"] or "-", _duration(r["uptime"]),
          _size(r["memory_rss"]), "-" if r["cpu_percent"] is None else r["cpu_percent"],
          r["processes"]] for r in records],
    )
    for r in records:
        if r["crashed"]:
            _note(f"{r['id']}: {r['crashed']['reason']} at {r['crashed'].get('time', '?')}; "
                  f"last exit status {r['crashed'].get('exitstatus')}; its log ended with:")
            for line in r["crashed"].get("log", []):
                _note("  " + line)


@cli.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def start(ctx, instance_id):
    """Start an instance; it also starts at boot from now on."""
    if ctx.home.lifecycle.start(instance_id):
        _note(f"{instance_id} started")
    else:
        _note(f"{instance_id} was already running")


@cli.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def stop(ctx, instance_id):
    """Stop an instance gracefully; it stays stopped at boot."""
    if ctx.home.lifecycle.stop(instance_id):
        _note(f"{instance_id} stopped")
    else:
        _note(f"{instance_id} was not running")


@cli.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def restart(ctx, instance_id):
    """Stop, then start an instance."""
    ctx.home.lifecycle.restart(instance_id)
    _note(f"{instance_id} restarted")


@cli.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def destroy(ctx, instance_id):
    """Stop an instance and remove its program, folder, logs and port."""
    _deployer(ctx).destroy(instance_id)  # as the app's deploy state allows
    _note(f"{instance_id} destroyed")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("instance_id", metavar="ID")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_home
def run(ctx, instance_id, command):
    """Run COMMAND (default: a shell) in the instance's folder and environment.

    The environment is exactly the one its server gets: PORT, SARGE_*, the
    app's configured variables and its virtualenv first on PATH. Run by root,
    it runs as the app's user (etc/sarge.toml [users]), on a terminal of its
    own when run from one.
    """
    from .commands import execute, run_command

    home = ctx.home
    return execute(run_command(home, home.settings, home.get(instance_id), list(command)),
                   relay=True)


@cli.command()
@click.argument("instance_id", metavar="ID")
@click.option("-n", "--lines", default=10, show_default=True, type=click.IntRange(min=0),
              help="How many of the last lines to print.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines as they come.")
@click.option("-p", "--process", default="web", show_default=True, metavar="TYPE",
              help="Which process type's log (a Procfile's worker, say).")
@pass_home
def logs(ctx, instance_id, lines, follow, process):
    """Print the end of an instance's log (its stdout and stderr)."""
    from . import logs as core_logs

    path = ctx.home.store.log_path(instance_id, process)
    for line in core_logs.tail(path, lines):
        _echo(line)
    if follow:
        for chunk in core_logs.follow(path):
            _echo(chunk, nl=False)


def _progress(step, seconds, detail) -> None:
    _echo(f"  {step:<13} {seconds:6.2f}s  {detail}".rstrip(), err=True)


def _deployer(ctx):
    from .deploy import Deployer

    return Deployer(ctx.home, progress=_progress)


@cli.command()
@click.argument("source", metavar="SOURCE")
@click.option("--app", "app", required=True, metavar="NAME", help="The application's name.")
@click.option("--listen", metavar="HOST:PORT",
              help="Where its front-end listens (required the first time; then remembered).")
@click.option("--check", metavar="PATH",
              help="The path that must answer 2xx or 3xx before traffic moves [default: /].")
@click.option("--timeout", type=int, metavar="SECONDS",
              help="How long the new version may take to become healthy [default: 60].")
@pass_home
def deploy(ctx, source, app, listen, check, timeout):
    """Deploy SOURCE (a folder or a .tar/.tar.gz/.tgz archive) as the new version of NAME.

    \b
    A rolling deploy: new instance, unpack, virtualenv (requirements.txt),
    release (the Procfile's release: line), start, health check, switch the
    front-end, let the old version drain, stop it (kept for rollback).
    Any failure before the switch removes the new instance; the current
    version keeps serving. Prints the new instance's id on stdout; the steps
    and their durations go to stderr.
    """
    deployer = _deployer(ctx)
    instance = deployer.deploy(source, app, listen=listen, check=check, timeout=timeout)
    _note(f"{app} now serves {instance.id} on http://{deployer.state(app).listen}/")
    _echo(instance.id)


@cli.command()
@click.argument("app", metavar="NAME")
@click.argument("instance_id", metavar="ID")
@pass_home
def route(ctx, app, instance_id):
    """Point NAME's front-end at its running instance ID, after a health check."""
    instance = _deployer(ctx).route(app, instance_id)
    _note(f"{app} now serves {instance.id}")


@cli.command()
@click.argument("app", metavar="NAME")
@pass_home
def rollback(ctx, app):
    """Go back to NAME's previous instance: start, check, switch, stop the current."""
    instance = _deployer(ctx).rollback(app)
    _note(f"{app} rolled back to {instance.id}")
    _echo(instance.id)


@cli.command()
@click.argument("app", metavar="NAME")
@click.argument("assignments", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove a variable.")
@click.option("--json", "as_json", is_flag=True, help="Print the variables as JSON.")
@click.option("--deploy", "redeploy", is_flag=True,
              help="Then redeploy the current version, so that the change takes effect.")
@pass_home
def config(ctx, app, assignments, unset, as_json, redeploy):
    """Show or change NAME's environment variables.

    \b
    sarge HOME config web                     print them
    sarge HOME config web KEY=VALUE ...       set some
    sarge HOME config web --unset KEY         remove one
    Values keep every character but line breaks. They are stored in etc/apps/NAME.json
    (mode 0600); each deploy gives its instance a copy, read when a process
    starts. So a change takes effect with the next deploy (or --deploy), a
    bad value fails its health check like bad code, and a rollback brings
    back the values of the version it returns to.
    """
    if redeploy:
        instance = _deployer(ctx).configure(app, assignments, unset)
        _note(f"{app}: configuration saved; {instance.id} runs with it")
        _echo(instance.id)
        return
    from .variables import configure

    values = configure(ctx.home, app, assignments, unset)
    if assignments or unset:
        _note(f"{app}: configuration saved; it takes effect with the next deploy "
              "(or: config --deploy)")
    elif as_json:
        _echo_json(values)
    else:
        for key, value in sorted(values.items()):
            _echo(f"{key}={value}")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what is damaged and what repair would do; "
              "change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_home
def repair(ctx, dry_run, as_json):
    """Find damaged or missing state files and rebuild them from what is still true.

    Instance records from their folders and port links, programs from the
    records, an app's deploy state from the front-end's configuration, an app's
    variables from its current instance's deployed copy; generated files as
    init makes them. Nothing is ever removed. Exit status 1 when something is
    left that only you can fix (each is listed, with what to do).
    """
    from .repair import Repair

    ctx.home.check()
    findings = Repair(ctx.home, dry_run=dry_run).run()
    manual = [f for f in findings if f.manual]
    if as_json:
        _echo_json({"findings": [f.to_dict() for f in findings]})
    else:
        for f in findings:
            label = "needs you" if f.manual else ("would fix" if dry_run else "repaired")
            _echo(f"{label}: {os.path.relpath(f.path, ctx.home.path)}: {f.problem}; "
                       f"{f.action}")
        if not findings:
            _note("nothing to repair: every state file is sound")
    if manual:
        _note(f"sarge: {len(manual)} problem(s) need you (listed above)")
        return 1
    return 0


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
    from .instance import utcnow

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


def _internal_error(exc: Exception, context: Context, argv) -> None:
    """A bug: one line for the operator, the traceback in the home's log (and on stderr
    with ``SARGE_DEBUG=1``)."""
    import traceback

    trace = "".join(traceback.format_exception(exc))
    debug = os.environ.get("SARGE_DEBUG") == "1"
    if debug:
        _echo(trace, err=True, nl=False)
    logged = _log_traceback(context.path, argv, trace)
    message = " ".join(str(exc).split())  # one line, whatever the message holds
    where = (f"the traceback is in {_log_path(context.path)}" if logged
             else "the traceback is above" if debug
             else "run it again with SARGE_DEBUG=1 to see the traceback")
    _echo(f"sarge: internal error: {type(exc).__name__}"
          f"{': ' + message if message else ''}; {where} (a bug in sarge: please report it)",
          err=True)


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
        _echo(f"sarge: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.info_name if exc.ctx is not None and exc.ctx.parent else ""
        hint = f" (see `sarge HOME {command} --help`)".replace("  ", " ")
        _echo(f"sarge: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        _echo(f"sarge: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        _echo("sarge: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except RecursionError:
        # Python's parsers (json, tomllib) recurse once per level of what they read.
        _echo("sarge: something this command read is nested too deeply (thousands of "
              "levels of [ or {); check what it was given, and the files it names", err=True)
        sys.exit(1)
    except BrokenPipeError:
        # The reader went away (`sarge ... | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        # Last resort: what no command foresaw (a permission, a full disk) is still one line.
        where = f" ({exc.filename})" if exc.filename else ""
        _echo(f"sarge: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug is one line, and logged
        _internal_error(exc, context, argv)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
