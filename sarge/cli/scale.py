"""``sarge HOME scale NAME [TYPE=N]...``: how many processes of each type an app runs."""

from __future__ import annotations

import click

from ..errors import UsageError
from ..instance import base_type, check_app_name
from .context import pass_home
from .deploys import _watch, watch_options
from .output import echo_json, note, table


def _counts(assignments) -> dict:
    counts = {}
    for text in assignments:
        name, sep, count = text.partition("=")
        if not sep or not count.isdigit():
            raise UsageError(f"invalid {text!r}: give TYPE=N, such as web=4")
        counts[name] = int(count)
    return counts


@click.command()
@click.argument("app", metavar="NAME")
@click.argument("assignments", nargs=-1, metavar="[TYPE=N]...")
@watch_options
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_home
def scale(ctx, app, assignments, watch, no_watch, as_json):
    """Show or change how many processes of each type NAME runs (1 to 32).

    \b
    A change deploys the current version again with the new counts, as a
    rolling deploy: every web process of the new instance answers its health
    check before the switch, each on a port of its own ($PORT), and nginx
    balances across them (to the one with the fewest open requests). Other
    types run as TYPE, TYPE.2, TYPE.3... The counts are kept for the next
    deploys. Example: sarge HOME scale web web=4 worker=2
    """
    deployer = ctx.deployer()
    if assignments:
        instance = deployer.scale(app, _counts(assignments), watch=_watch(watch, no_watch))
        note(f"{app} now runs {instance.id}")
    state = deployer.state(check_app_name(app))
    if state.current is None:
        raise UsageError(f"{app} is not deployed")
    instance = ctx.home.get(state.current)
    types = sorted({base_type(p) for p in instance.processes}, key=lambda t: (t != "web", t))
    rows = [{"type": t, "count": state.scale.get(t, 1),
             "processes": sorted(p for p in instance.processes if base_type(p) == t)}
            for t in types]
    if as_json:
        echo_json({"app": app, "instance": instance.id, "types": rows})
        return
    ports = dict(instance.web_ports())
    table(["TYPE", "COUNT", "PROCESSES"],
          [[r["type"], r["count"], ", ".join(
              f"{p} ({ports[p]})" if p in ports else p for p in r["processes"])]
           for r in rows])


COMMANDS = (scale,)
