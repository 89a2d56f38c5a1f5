"""``requirements.txt`` as validate reads it: each requirement parsed as PEP 508 says
(with PyPA's :mod:`packaging`, what pip itself vendors), pip's options let through, and
a requirement that is not pinned to one version (``==``, ``===``, or a URL) a warning
(an error with ``--strict``): a deploy next month would install something else."""

from __future__ import annotations

import re

from .findings import error, warning

NAME = "requirements.txt"
#: pip's options on a line of their own (``-r other.txt``, ``--index-url ...``, ``-e .``).
_OPTION_RE = re.compile(r"-")
#: Where a requirement's own options begin (``--hash=...``), or an inline comment.
_TRAILER_RE = re.compile(r"\s+(--?[a-z]|#)")
_PATH_RE = re.compile(r"(\.{1,2}/|/|~|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


def logical_lines(text: str):
    """(line number, line) of each requirement or option: comments dropped, lines that
    end with a backslash joined to the next (numbered as their first)."""
    pending, start = "", None
    for number, line in enumerate(text.splitlines(), 1):
        if start is None:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending, first, start = "", start, None
        if line.lstrip().startswith("#"):
            continue
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            yield first, line
    if pending.strip():
        yield start, pending.strip()


def check(tree, strict: bool = False) -> list:
    """The findings of the source's ``requirements.txt`` (none when it has none)."""
    if not tree.has(NAME):
        return []
    text = tree.text(NAME)
    if text is None:
        return [error(NAME, None, "not UTF-8 text: save it as UTF-8")]
    from packaging.requirements import InvalidRequirement, Requirement

    found = []
    loose = error if strict else warning
    for number, line in logical_lines(text):
        if _OPTION_RE.match(line):
            continue  # pip's own: -r, -c, -e, --index-url, --find-links ...
        spec = _TRAILER_RE.split(line, maxsplit=1)[0]
        if _PATH_RE.match(spec):
            found.append(loose(NAME, number, f"{spec[:60]!r} is a path or URL: pin a "
                               "version on an index instead (NAME==VERSION)"))
            continue
        try:
            requirement = Requirement(spec)
        except InvalidRequirement as exc:
            found.append(error(NAME, number, f"{spec[:60]!r} is not a requirement pip "
                               f"understands ({_short(exc)}): write NAME==VERSION, such as "
                               "flask==3.0.3"))
            continue
        if not pinned(requirement):
            found.append(loose(NAME, number, f"{requirement.name} is not pinned: write "
                               f"{requirement.name}==VERSION (pip freeze says which)"))
    return found


def pinned(requirement) -> bool:
    """One version only: ``==X`` (not ``==X.*``), ``===X``, or ``name @ URL``."""
    if requirement.url:
        return True
    specs = list(requirement.specifier)
    return len(specs) == 1 and (specs[0].operator == "===" or (
        specs[0].operator == "==" and not specs[0].version.endswith(".*")))


def _short(exc) -> str:
    return " ".join(str(exc).split())[:120]
