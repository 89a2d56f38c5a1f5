"""``sarge-fleet status``, ``run``, ``config`` and ``bootstrap``: the hosts one by one."""

from __future__ import annotations

import click

from ...errors import FleetError, UsageError
from .options import pass_options, selection
from .output import echo, echo_json, progress, table


@click.command()
@click.option("--app", metavar="NAME", help="Only this app.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@selection
@pass_options
def status(options, app, as_json, names, role):
    """Every host's apps: current instance, its state, its version, how many instances.

    A host that does not answer is a row of its own ("unreachable"), never left
    out, and the exit status is then 1.
    """
    from ..status import fleet_status

    rows = fleet_status(options.fleet, options.hosts(names, role), app)
    if as_json:
        echo_json({"hosts": rows})
    else:
        table(["HOST", "APP", "CURRENT", "STATE", "VERSION", "INSTANCES"],
              [[r["host"], r["app"], r["current"], r["state"], r["version"], r["instances"]]
               for r in rows])
        for r in rows:
            if r["error"]:
                echo(f"sarge-fleet: {r['error']}", err=True)
    return 1 if any(r["error"] for r in rows) else 0


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--all", "everywhere", is_flag=True, help="On every host of the selection.")
@click.option("--json", "as_json", is_flag=True,
              help="Print each host's exit status and output as JSON.")
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="HOST|--all -- COMMAND...")
@selection
@pass_options
def run(options, everywhere, as_json, words, names, role):
    """Run a sarge command on a host (HOST: its name; a comma list) or on --all.

    \b
    sarge-fleet run web1 -- list
    sarge-fleet run --all -- history -n 5
    One host: its output as it is, and its exit status. Several: each line of
    their output prefixed with the host's name, exit status 1 unless all
    succeeded.
    """
    from ..broadcast import run_everywhere

    words = list(words)
    if not everywhere:
        if not words:
            raise UsageError("name a host (or --all), then -- and the sarge command")
        names = (*names, words.pop(0))
    if not words:
        raise UsageError("no sarge command given: put it after -- (say: -- list)")
    many = everywhere or len(options.hosts(names, role)) > 1
    results = run_everywhere(options.fleet, options.hosts(names, role), words,
                             line=progress if many or as_json else _plain)
    if as_json:
        echo_json({"hosts": [{"host": h.name, "exited": a.exited if a else None,
                              "stdout": a.stdout if a else "",
                              "error": str(e) if e else None} for h, a, e in results]})
    for host, answer, error in results:
        if error is not None:
            echo(f"sarge-fleet: {error}", err=True)
        elif not as_json:
            for line in answer.stdout.splitlines():
                echo(f"{host.name}: {line}" if many else line)
    if not many and not as_json and results[0][1] is not None:
        return results[0][1].exited
    return 0 if all(a is not None and a.ok for _, a, _ in results) else 1


def _plain(host, line):
    echo(line, err=True)


@click.command()
@click.argument("app", metavar="NAME")
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a variable.")
@selection
@pass_options
def config(options, app, assignments, unset, names, role):
    """Set NAME's variables on every host (they take effect with its next deploy).

    The values travel as a file (0600) over SFTP, never on a command line.
    """
    from ..broadcast import configure_everywhere

    if not assignments and not unset:
        raise UsageError("give KEY=VALUE or --unset KEY (`sarge-fleet run HOST -- config "
                         "NAME` shows them)")
    failed = 0
    for host, answer, error in configure_everywhere(options.fleet, options.hosts(names, role),
                                                   app, assignments, unset):
        if error is None and answer.ok:
            progress(host.name, "configuration saved")
        else:
            failed += 1
            progress(host.name, f"failed: {error or answer.reason()}")
    if failed:
        raise FleetError(f"the configuration of {app} was not saved on {failed} host(s) "
                         "(named above); run it again for them with --hosts")


COMMANDS = (status, run, config)
