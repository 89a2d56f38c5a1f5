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
@click.option("--from-file", "from_file", type=click.File(encoding="utf-8"), metavar="PATH",
              help="Also the KEY=VALUE lines of PATH: values kept off this command line.")
@selection
@pass_options
def config(options, app, assignments, unset, from_file, names, role):
    """Set NAME's variables on every host (they take effect with its next deploy).

    The values travel as a file (0600) over SFTP, never on a remote command line.
    """
    from ..broadcast import configure_everywhere

    if from_file is not None:
        assignments = (*assignments, *(line for line in from_file.read().splitlines()
                                       if line.strip()))

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



@click.command()
@click.option("--from", "wheel", metavar="WHEEL",
              help="Install this wheel of sarge [default: one built from the local sarge's "
                   "source tree: every host runs the same version].")
@click.option("--find-links", metavar="DIR",
              help="On the hosts: install sarge's dependencies from the wheels in DIR only "
                   "(no network).")
@click.option("--index", metavar="URL", help="On the hosts: the package index (pip).")
@click.option("--user", default="", metavar="NAME",
              help="init --user: who runs the apps when supervisord runs as root.")
@click.option("--python", default="python3", show_default=True, metavar="PATH",
              help="The hosts' Python (3.10+, with venv).")
@click.option("--script", metavar="PATH",
              help="The bootstrap script [default: deploy/bootstrap-sarge.py as this sarge "
                   "ships it].")
@click.option("--no-systemd", is_flag=True,
              help="Do not install the systemd unit even where systemd runs.")
@click.option("--json", "as_json", is_flag=True, help="Print each host's report as JSON.")
@selection
@pass_options
def bootstrap(options, wheel, find_links, index, user, python, script, no_systemd, as_json,
              names, role):
    """Install sarge and make the home on every host of the fleet (safe to run again).

    \b
    Uploads the wheel of the local sarge and deploy/bootstrap-sarge.py; on each
    host at once: a virtualenv (HOME.venv), sarge in it, `sarge HOME init`.
    Where systemd runs and the SSH user is root, the home's systemd unit is
    installed and enabled; elsewhere supervisord is started, and the crontab
    line that starts it at boot is printed.
    """
    from ..bootstrap import bootstrap_hosts

    results = bootstrap_hosts(options.fleet, options.hosts(names, role), wheel=wheel,
                              script=script, find_links=find_links, index=index, user=user,
                              python=python, systemd=not no_systemd, line=progress)
    if as_json:
        echo_json({"hosts": [{"host": h.name, "error": str(e) if e else None, **(r or {})}
                             for h, r, e in results]})
    else:
        table(["HOST", "SARGE", "HOME", "AT BOOT"],
              [[h.name, r["sarge"] if r else "-", h.home, r["boot"] if r else f"failed: {e}"]
               for h, r, e in results])
    failed = [h.name for h, _, e in results if e]
    if failed:
        raise FleetError(f"bootstrap failed on {', '.join(failed)} (see above)")


COMMANDS = (status, run, config, bootstrap)
