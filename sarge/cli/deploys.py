"""The commands of apps and their deploys: deploy, route, rollback, config, repair."""

from __future__ import annotations

import os
import sys

import click

from ..errors import UsageError
from ..instance import check_app_name
from .context import pass_home
from .output import echo, echo_json, note
from .sites import site_changes, site_options


def watch_options(command):
    """--watch SECONDS and --no-watch, for the commands that switch the front-end."""
    command = click.option("--no-watch", "no_watch", is_flag=True,
                           help="Do not watch the new version after the switch.")(command)
    return click.option(
        "--watch", type=click.IntRange(0, 86400), metavar="SECONDS",
        help="Watch the new version this long after the switch, the old one still "
             "running: if it fails, go back to the old one by itself [default: "
             "[deploy] watch in etc/sarge.toml, 30].")(command)


def _watch(watch, no_watch):
    return 0 if no_watch else watch


@click.command()
@click.argument("source", metavar="SOURCE")
@click.option("--app", "app", required=True, metavar="NAME", help="The application's name.")
@click.option("--listen", metavar="HOST:PORT",
              help="Where its front-end listens (required the first time; then remembered).")
@click.option("--check", metavar="PATH",
              help="The path that must answer 2xx or 3xx before traffic moves [default: /].")
@click.option("--timeout", type=int, metavar="SECONDS",
              help="How long the new version may take to become healthy [default: 60].")
@watch_options
@site_options
@pass_home
def deploy(ctx, source, app, listen, check, timeout, watch, no_watch, **site):
    """Deploy SOURCE (a folder or a .tar/.tar.gz/.tgz archive) as the new version of NAME.

    \b
    A rolling deploy: new instance, unpack, virtualenv (requirements.txt),
    release (the Procfile's release: line), start, health check, switch the
    front-end, let the old version drain, watch the new one (30 s: a crash,
    a failing health check or 5xx answers send the traffic back to the old
    one), stop the old one (kept for rollback). Any failure before the switch,
    or in the watch, removes the new instance; the current version serves.
    Prints the new instance's id on stdout; the steps and their durations go
    to stderr.
    """
    deployer = ctx.deployer()
    instance = deployer.deploy(source, app, listen=listen, check=check, timeout=timeout,
                               watch=_watch(watch, no_watch), site=site_changes(**site))
    note(f"{app} now serves {instance.id} on http://{deployer.state(app).listen}/")
    echo(instance.id)


@click.command()
@click.argument("app", metavar="NAME")
@click.argument("instance_id", metavar="ID")
@watch_options
@pass_home
def route(ctx, app, instance_id, watch, no_watch):
    """Point NAME's front-end at its running instance ID, after a health check."""
    instance = ctx.deployer().route(app, instance_id, watch=_watch(watch, no_watch))
    note(f"{app} now serves {instance.id}")


@click.command()
@click.argument("app", metavar="NAME")
@watch_options
@pass_home
def rollback(ctx, app, watch, no_watch):
    """Go back to NAME's previous instance: start, check, switch, stop the current."""
    instance = ctx.deployer().rollback(app, watch=_watch(watch, no_watch))
    note(f"{app} rolled back to {instance.id}")
    echo(instance.id)


@click.command()
@click.argument("app", metavar="NAME")
@click.option("--data", is_flag=True,
              help="Remove its data folder (var/data/NAME) and its backing services too: "
                   "asked on a terminal.")
@click.option("--yes", is_flag=True, help="Do not ask (required with --data without a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
@pass_home
def undeploy(ctx, app, data, yes, as_json):
    """Remove NAME: its route, instances, state, variables and unused virtualenvs.

    \b
    The front-end stops serving NAME's address (nginx reloads with the other
    apps' routes; they keep serving), every instance of NAME is stopped and
    destroyed, then its deploy state and variables (etc/apps/NAME.json) are
    removed. Its data (var/data/NAME) and its backing services (which keep
    running, their data in there) are kept unless --data is given. Safe to run
    again: what could not be removed is named, and a second run finishes.
    """
    if data and not yes:
        path = ctx.home.data_dir(check_app_name(app))  # a bad name: refused before asking
        if sys.stdin is None or not sys.stdin.isatty():
            raise UsageError(f"--data removes {path} for good: add --yes to do it "
                             "without a terminal")
        if not click.confirm(f"Remove {app} and its data in {path} for good?", err=True):
            raise click.Abort()
    done = ctx.deployer().undeploy(app, data=data)
    if as_json:
        echo_json(done)
        return
    kept = "" if data else f"; its data is kept in {ctx.home.data_dir(app)}"
    if done["services"]:
        kept += f"; {', '.join(done['services'])} removed"
    note(f"{app} undeployed: {len(done['instances'])} instance(s) destroyed"
         + (f", {done['route']} no longer served" if done["route"] else "") + kept)


@click.command()
@click.argument("app", metavar="NAME")
@click.argument("assignments", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove a variable.")
@click.option("--from-file", "from_file", metavar="PATH",
              help="Also set the KEY=VALUE lines of PATH (-KEY removes one): values kept "
                   "off the command line, where ps shows them.")
@click.option("--json", "as_json", is_flag=True, help="Print the variables as JSON.")
@click.option("--deploy", "redeploy", is_flag=True,
              help="Then redeploy the current version, so that the change takes effect.")
@watch_options
@pass_home
def config(ctx, app, assignments, unset, from_file, as_json, redeploy, watch, no_watch):
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
    if from_file:
        from ..variables import read_assignments

        more, less = read_assignments(from_file)
        assignments, unset = (*assignments, *more), (*unset, *less)
    if redeploy:
        instance = ctx.deployer().configure(app, assignments, unset,
                                            watch=_watch(watch, no_watch))
        note(f"{app}: configuration saved; {instance.id} runs with it")
        echo(instance.id)
        return
    if assignments or unset:
        ctx.deployer().set_variables(app, assignments, unset)
        note(f"{app}: configuration saved; it takes effect with the next deploy "
             "(or: config --deploy)")
        return
    from ..variables import configure

    values = configure(ctx.home, app, (), ())
    if as_json:
        echo_json(values)
    else:
        for key, value in sorted(values.items()):
            echo(f"{key}={value}")


@click.command()
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
    from ..repair import Repair

    ctx.home.check()
    findings = Repair(ctx.home, dry_run=dry_run).run()
    manual = [f for f in findings if f.manual]
    if as_json:
        echo_json({"findings": [f.to_dict() for f in findings]})
    else:
        for f in findings:
            label = "needs you" if f.manual else ("would fix" if dry_run else "repaired")
            echo(f"{label}: {os.path.relpath(f.path, ctx.home.path)}: {f.problem}; "
                 f"{f.action}")
        if not findings:
            note("nothing to repair: every state file is sound")
    if manual:
        note(f"sarge: {len(manual)} problem(s) need you (listed above)")
        return 1
    return 0


COMMANDS = (deploy, route, rollback, undeploy, config, repair)
