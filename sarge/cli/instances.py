"""The commands of the home and its instances: init, new, list, status, start, stop,
restart, destroy, run, logs."""

from __future__ import annotations

import click

from .context import pass_home
from .output import duration, echo, echo_json, note, revision, size, table


@click.command()
@click.option("--logrotate", "logrotate", is_flag=True,
              help="Print a logrotate snippet for the home's logs instead.")
@click.option("--user", default="", metavar="NAME",
              help="Who runs the apps when supervisord runs as root: written to a new "
                   "etc/sarge.toml as [users] default (default: none, and nothing runs).")
@click.option("--python", default="", metavar="PATH",
              help="The Python the apps' virtualenvs are made with: written to a new "
                   "etc/sarge.toml as [deploy] python (default: sarge's own).")
@pass_home
def init(ctx, logrotate, user, python):
    """Create the home folder (or complete it; nothing existing is lost).

    With --user, that user must be able to run the apps' Python (--python, or
    sarge's own): one under a folder only root can enter (a pyenv in /root) is
    refused, and --python /usr/bin/python3 is the fix.
    """
    if logrotate:
        echo(ctx.home.logrotate(), nl=False)
        return
    changed = ctx.home.init(user=user, python=python)
    home = ctx.home.path
    if changed:
        note(f"sarge home ready in {home}")
    else:
        note(f"{home} is already a complete sarge home; nothing changed")
    note(f"start its supervisord with {home}/bin/supervisord, then try {home}/bin/sarge --help")


@click.command()
@click.argument("description", metavar="JSON")
@pass_home
def new(ctx, description):
    """Create an instance from a JSON description and print its id.

    \b
    Example: sarge HOME new '{"application_name": "web"}'
    The instance gets a folder HOME/ID, a port, and a supervisord program that
    runs HOME/ID/server once started. It is not started.
    """
    from ..instance import parse_new_request

    request = parse_new_request(description)
    echo(ctx.home.lifecycle.new(request["application_name"]).id)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_home
def list_(ctx, as_json):
    """List the instances with their app, port, state and role.

    The role is "current" for the instance an app's front-end routes to, and
    "previous" for those kept for rollback. The revision is the git commit of a
    packaged archive (+dirty: its work tree had changes), or its manifest's sha256
    when it was not packaged from git; - for a source without sarge-manifest.json.
    """
    from ..status import listing

    rows, supervisord_running = listing(ctx.home)
    if not supervisord_running:
        note("sarge: supervisord is not running; states are unknown "
             f"(start it with {ctx.home.path}/bin/supervisord)")
    if as_json:
        echo_json({"instances": rows})
        return
    table(["ID", "APP", "PORT", "STATE", "ROLE", "CREATED", "REVISION"],
          [[r["id"], r["application_name"], r["port"], r["state"], r["role"] or "-",
            r["created"], revision(r["revision"])] for r in rows])


@click.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_home
def status(ctx, instance_id, as_json):
    """Show state, pid, user, uptime, memory and CPU of one instance or of all.

    Memory (RSS) and CPU count the instance's whole process tree.
    """
    from ..status import status as core_status

    records = core_status(ctx.home, instance_id)
    if as_json:
        echo_json(records[0] if instance_id is not None else {"instances": records})
        return
    table(
        ["ID", "STATE", "PID", "USER", "UPTIME", "MEMORY", "CPU%", "PROCS", "REVISION"],
        [[r["id"], r["state"], r["pid"] or "-", r["user"] or "-", duration(r["uptime"]),
          size(r["memory_rss"]), "-" if r["cpu_percent"] is None else r["cpu_percent"],
          r["processes"], revision(r["revision"])] for r in records],
    )
    for r in records:
        if r["crashed"]:
            note(f"{r['id']}: {r['crashed']['reason']} at {r['crashed'].get('time', '?')}; "
                 f"last exit status {r['crashed'].get('exitstatus')}; its log ended with:")
            for line in r["crashed"].get("log", []):
                note("  " + line)


@click.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def start(ctx, instance_id):
    """Start an instance; it also starts at boot from now on."""
    if ctx.home.lifecycle.start(instance_id):
        note(f"{instance_id} started")
    else:
        note(f"{instance_id} was already running")


@click.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def stop(ctx, instance_id):
    """Stop an instance gracefully; it stays stopped at boot."""
    if ctx.home.lifecycle.stop(instance_id):
        note(f"{instance_id} stopped")
    else:
        note(f"{instance_id} was not running")


@click.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def restart(ctx, instance_id):
    """Stop, then start an instance."""
    ctx.home.lifecycle.restart(instance_id)
    note(f"{instance_id} restarted")


@click.command()
@click.argument("instance_id", metavar="ID")
@pass_home
def destroy(ctx, instance_id):
    """Stop an instance and remove its program, folder, logs and port."""
    ctx.deployer().destroy(instance_id)  # as the app's deploy state allows
    note(f"{instance_id} destroyed")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("instance_id", metavar="ID")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--env", "assignments", multiple=True, metavar="NAME=VALUE",
              help="Set a variable for this command (repeatable); it wins over the others.")
@pass_home
def run(ctx, instance_id, command, assignments):
    """Run COMMAND (default: a shell) in the instance's folder and environment.

    \b
    sarge HOME run ID -e DEBUG=1 -- python manage.py shell
    The variables are those its server gets: PORT, SARGE_*, the app's
    configured variables and its virtualenv first on PATH, then each -e.
    Run by root, it runs as the app's user (etc/sarge.toml [users]), on a
    terminal of its own when run from one, and root's environment is not
    passed: only PATH, LANG, LANGUAGE, LC_*, TZ, TERM, COLORTERM, COLUMNS,
    LINES and SHELL of it. Pass what the command needs with -e. Put -- before a
    command that has options of its own.
    """
    from ..commands import execute, run_command
    from ..variables import parse_assignments

    env = parse_assignments(assignments, "NAME=VALUE (-e)")  # a bad one: exit 2
    home = ctx.home
    return execute(run_command(home, home.settings, home.get(instance_id), list(command),
                               env=env), relay=True)


@click.command()
@click.argument("instance_id", metavar="ID")
@click.option("-n", "--lines", default=10, show_default=True, type=click.IntRange(min=0),
              help="How many of the last lines to print.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines as they come.")
@click.option("-p", "--process", default="web", show_default=True, metavar="TYPE",
              help="Which process type's log (a Procfile's worker, say).")
@pass_home
def logs(ctx, instance_id, lines, follow, process):
    """Print the end of an instance's log (its stdout and stderr)."""
    from .. import logs as core_logs

    path = ctx.home.store.log_path(instance_id, process)
    for line in core_logs.tail(path, lines):
        echo(line)
    if follow:
        for chunk in core_logs.follow(path):
            echo(chunk, nl=False)


COMMANDS = (init, new, list_, status, start, stop, restart, destroy, run, logs)
