"""What ``sarge-fleet`` prints. Every line goes through :func:`echo`, which shows control
characters as ``?``: much of it is what the hosts answered."""

from __future__ import annotations

import json
import threading

import click

from ...logs import printable

_lock = threading.Lock()  # one host's line at a time


def echo(text="", err: bool = False) -> None:
    with _lock:
        click.echo(printable(str(text)), err=err)


def echo_json(data) -> None:
    echo(json.dumps(data, indent=2, sort_keys=True))


def progress(host, line) -> None:
    """A line of the rollout (``host`` None) or of one host, on stderr."""
    echo(line if host is None else f"{host}: {line}", err=True)


def table(header, rows) -> None:
    rows = [[("-" if x is None else x) for x in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header] + rows:
        echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def summary(report, as_json: bool) -> None:
    """The end of a rollout: a table on stdout (host, old -> new, duration, outcome), or
    the whole report as JSON."""
    if as_json:
        echo_json(report.to_dict())
        return
    table(["HOST", "WAVE", "OLD -> NEW", "SECONDS", "OUTCOME"],
          [[r.host, r.wave, f"{r.old or '-'} -> {r.new or '-'}", f"{r.seconds:.1f}",
            r.outcome + (f": {r.message}" if r.message and r.outcome != "ok" else "")]
           for r in report.results])
