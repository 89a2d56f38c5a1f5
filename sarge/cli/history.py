"""``sarge HOME history``: the deploy history, and the check of its chain."""

from __future__ import annotations

import click

from ..errors import UsageError
from .context import pass_home
from .output import echo, echo_json, note, table


@click.command()
@click.argument("app", metavar="[NAME]", required=False)
@click.option("-n", "--lines", "count", default=20, show_default=True,
              type=click.IntRange(min=1), help="How many of the last records.")
@click.option("--show", "show", type=click.IntRange(min=1), metavar="SEQ",
              help="Print the record SEQ whole (JSON).")
@click.option("--verify", is_flag=True,
              help="Check that no record was changed, removed or added by hand.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_home
def history(ctx, app, count, show, verify, as_json):
    """Show the last deploys, rollbacks, routes, config changes and undeploys.

    \b
    Each is a record of var/log/history.jsonl: when, who, the app, from which
    instance to which, the source (its SHA-256 or git revision), the outcome
    (ok, or failed at a step) and each step's time. Every record holds
    the SHA-256 of the one before it: --verify finds a record edited by hand.
    """
    from ..deploy.journaled import journal_of

    journal = journal_of(ctx.home)
    if verify:
        problems = journal.verify()
        for problem in problems:
            echo(f"history: {problem}")
        if problems:
            note(f"sarge: the history of {ctx.home.path} is not as sarge wrote it")
            return 1
        note(f"history: {len(journal.records())} record(s), each as sarge wrote it")
        return 0
    records = journal.records()
    if app is not None:
        records = [r for r in records if r.get("app") == app]
    if show is not None:
        found = [r for r in records if r.get("seq") == show]
        if not found:
            raise UsageError(f"no record {show} in the history"
                             + (f" of {app}" if app else ""))
        echo_json(found[0])
        return 0
    records = records[-count:]
    if as_json:
        echo_json({"records": records})
        return 0
    table(["SEQ", "TIME", "APP", "ACTION", "FROM", "TO", "OUTCOME", "SECONDS", "USER"],
          [[r.get("seq"), r.get("time"), r.get("app"), r.get("action"), r.get("from") or "-",
            r.get("to") or "-", _outcome(r), r.get("duration", "-"), r.get("user") or "-"]
           for r in records])
    return 0


def _outcome(record) -> str:
    if record.get("outcome") == "failed" and record.get("step"):
        return f"failed at {record['step']}"
    return str(record.get("outcome", "-"))
