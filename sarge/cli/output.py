"""What the command line prints: every line goes through :func:`echo`, which shows
control characters as ``?``; tables, durations and sizes for people, JSON for scripts."""

from __future__ import annotations

import json

import click

from ..logs import printable


def echo(text="", err: bool = False, nl: bool = True) -> None:
    """Print ``text`` (stderr with ``err``) with its control characters, tab and newline
    excepted, shown as ``?``: what sarge prints carries what an app chose (a Procfile's
    commands, the names of its files, its log), whose escape sequences must not drive
    the operator's terminal. Everything the command line prints goes through here."""
    click.echo(printable(str(text)), err=err, nl=nl)


def echo_json(data) -> None:
    echo(json.dumps(data, indent=2, sort_keys=True))


def note(message: str) -> None:
    """A line for the operator, on stderr: stdout stays for what scripts read."""
    echo(message, err=True)


def progress(step, seconds, detail) -> None:
    """One finished step of a deploy, on stderr."""
    echo(f"  {step:<13} {seconds:6.2f}s  {detail}".rstrip(), err=True)


def table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header] + rows:
        echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def revision(value) -> str:
    """An instance's revision in a table: the git commit's first 12 digits (``+dirty``
    when its work tree had changes), else ``sha256:`` and the manifest's first 12."""
    if not value:
        return "-"
    if value.get("git"):
        return str(value["git"])[:12] + ("+dirty" if value.get("dirty") else "")
    return "sha256:" + str(value.get("manifest_sha256"))[:12]


def duration(seconds) -> str:
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


def size(n) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
