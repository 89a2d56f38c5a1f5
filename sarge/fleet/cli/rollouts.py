"""``sarge-fleet deploy`` and ``sarge-fleet rollback``: rollouts in waves."""

from __future__ import annotations

import click

from ...errors import RolloutFailed
from .options import pass_options, selection
from .output import progress, summary


def rollout_options(command):
    for option in reversed([
        click.option("--limit", metavar="N|P%",
                     help="Hosts at a time: a count or a percentage [default: the fleet "
                          "file's [rollout] limit, 1]."),
        click.option("--max-failures", type=click.IntRange(min=0), metavar="N",
                     help="Failed hosts tolerated before the rollout stops [default: the "
                          "fleet file's [rollout] max_failures, 0]."),
        click.option("--wait", type=click.FloatRange(min=0), metavar="SECONDS",
                     help="Seconds between waves [default: the fleet file's [rollout] "
                          "wait, 0]."),
        click.option("--skip-unreachable", is_flag=True,
                     help="Roll out to the hosts that answer; without it, a host that does "
                          "not answer stops the rollout before any host is touched."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print the report as JSON (stdout) instead of a table."),
    ]):
        command = option(command)
    return selection(command)


def _rollout(options, names, role, limit, max_failures, wait):
    from ..rollout import Rollout

    return Rollout(options.fleet, options.hosts(names, role), limit=limit,
                   max_failures=max_failures, wait=wait, progress=progress)


def _report(action, as_json):
    """Run ``action()``; print its report, also when the rollout failed."""
    try:
        report = action()
    except RolloutFailed as exc:
        if exc.report is not None:
            summary(exc.report, as_json)
        raise
    summary(report, as_json)


@click.command()
@click.argument("source", metavar="SOURCE")
@click.option("--app", required=True, metavar="NAME", help="The application's name.")
@click.option("--listen", metavar="HOST:PORT",
              help="Its front-end's address on a first deploy (a host's own listen in the "
                   "fleet file wins).")
@click.option("--check", metavar="PATH", help="bin/sarge deploy --check, on every host.")
@click.option("--timeout", type=click.IntRange(1, 86400), metavar="SECONDS",
              help="bin/sarge deploy --timeout, on every host.")
@click.option("--watch", type=click.IntRange(0, 86400), metavar="SECONDS",
              help="bin/sarge deploy --watch, on every host.")
@click.option("--no-watch", is_flag=True, help="bin/sarge deploy --no-watch, on every host.")
@click.option("--wheels", is_flag=True,
              help="Pack a wheelhouse of the requirements with the source (sarge package "
                   "--wheels): hosts without an index install from it.")
@click.option("--strict", is_flag=True, help="Unpinned requirements refuse the source.")
@click.option("--revert-on-failure", "revert", is_flag=True,
              help="When a host fails, send the hosts already done back to their previous "
                   "instance: the fleet does not stay mixed.")
@rollout_options
@pass_options
def deploy(options, source, app, listen, check, timeout, watch, no_watch, wheels, strict, revert,
           names, role, limit, max_failures, wait, skip_unreachable, as_json):
    """Deploy SOURCE (a folder or an archive) as NAME on the fleet's hosts, in waves.

    \b
    A folder is validated and packed once by `sarge package` (the same archive
    and SHA-256 everywhere, its manifest checked by each host's deploy); the
    archive is put into each host's home over SFTP; each wave runs `bin/sarge deploy` on its
    hosts at once, and the next starts only when all of them succeeded. On a
    failure no further host is touched; the failed host keeps serving its old
    version. Each host's step lines go to stderr, prefixed with its name; a
    table of the hosts (old -> new instance, seconds, outcome) to stdout.
    One rollout of a fleet at a time (the lock beside the fleet file).
    """
    args = [*(["--check", check] if check else []),
            *(["--timeout", str(timeout)] if timeout else []),
            *(["--watch", str(watch)] if watch is not None else []),
            *(["--no-watch"] if no_watch else [])]
    rollout = _rollout(options, names, role, limit, max_failures, wait)
    _report(lambda: rollout.deploy(source, app, options=args, listen=listen, revert=revert,
                                   skip_unreachable=skip_unreachable, wheels=wheels,
                                   strict=strict), as_json)


@click.command()
@click.argument("app", metavar="NAME")
@rollout_options
@pass_options
def rollback(options, app, names, role, limit, max_failures, wait, skip_unreachable, as_json):
    """Send NAME back to its previous instance on the fleet's hosts, in waves."""
    rollout = _rollout(options, names, role, limit, max_failures, wait)
    _report(lambda: rollout.rollback(app, skip_unreachable=skip_unreachable), as_json)


COMMANDS = (deploy, rollback)
