"""The checks of ``sarge validate`` on a :class:`~.source.Tree`, but the requirements'
(:mod:`.requirements`) and the settings' (:mod:`.abspaths`): the Procfile (or an
executable ``server``), ``$PORT``, the Python ``runtime.txt`` asks for, the files that
should not ship. Each returns :class:`~.findings.Finding` values."""

from __future__ import annotations

import fnmatch
import posixpath
import re
import sys

from .. import pythons
from ..build import parse_procfile
from ..errors import BuildError
from ..instance import uses_socket
from .findings import error, warning

#: Servers that take their address on the command line: a web line of one of these
#: must say $PORT (or $SARGE_SOCKET), or it listens where nginx does not look.
SERVERS = ("gunicorn", "uvicorn", "hypercorn", "daphne", "waitress-serve", "granian",
           "flask run", "manage.py runserver")
_PORT_RE = re.compile(r"\$\{?PORT\b")

#: (pattern of a path that should not ship, why, what to do); matched against each part.
UNWANTED = (
    ("__pycache__", "compiled bytecode", "add __pycache__/ to .sargeignore"),
    ("*.pyc", "compiled bytecode", "add *.pyc to .sargeignore"),
    (".env", "local secrets and settings", "add .env to .sargeignore; set values with "
     "`sarge HOME config NAME KEY=VALUE`"),
    ("db.sqlite3", "a development database", "add db.sqlite3 to .sargeignore; keep data "
     "in $SARGE_DATA_DIR"),
    (".git", "the repository", "package from a work tree, or remove .git/ from the archive"),
    (".venv", "a virtualenv", "add .venv/ to .sargeignore: a deploy makes its own"),
    ("venv", "a virtualenv", "add venv/ to .sargeignore: a deploy makes its own"),
)


def procfile(tree) -> tuple:
    """(findings, {type: command}) of the Procfile (or the executable ``server``)."""
    if not tree.has("Procfile"):
        server = next((e for e in tree.entries if e.path == "server"), None)
        if server is not None and server.kind == "file" and server.mode & 0o100:
            return [], {"web": None}
        return [error(None, None, "neither a Procfile nor an executable server at the "
                      "root: add a Procfile with a line such as 'web: gunicorn app:app "
                      "--bind 127.0.0.1:$PORT'")], {}
    text = tree.text("Procfile")
    if text is None:
        return [error("Procfile", None, "not UTF-8 text: save it as UTF-8")], {}
    processes, problems = parse_procfile(text.splitlines())
    found = [error("Procfile", number, message + ("" if number is None else "; write "
                                                  "one 'type: command' a line"))
             for number, message in problems]
    web = processes.get("web")
    if web is not None and not _PORT_RE.search(web) and not uses_socket(processes):
        line = _line_of(text, "web")
        program = next((s for s in SERVERS if s in web), None)
        if program is not None:
            found.append(error("Procfile", line, f"the web process ({program}) does not "
                               "listen on $PORT: add --bind 127.0.0.1:$PORT (or "
                               "unix:$SARGE_SOCKET)"))
        else:
            found.append(warning("Procfile", line, "the web command does not name $PORT: "
                                 "make sure its program listens on the port in $PORT"))
    return found, processes


def _line_of(text: str, process: str):
    for number, line in enumerate(text.splitlines(), 1):
        if line.partition(":")[0].strip() == process:
            return number
    return None


def runtime(tree, home_python=None) -> list:
    """The Python ``runtime.txt`` or ``.python-version`` asks for, which this machine must
    have (``home_python``: the one deploys would use otherwise; default: sarge's own)."""
    home_python = home_python or pythons.Python(sys.executable, tuple(sys.version_info[:3]),
                                                "sarge's own")
    name = next((n for n in ("runtime.txt", ".python-version") if tree.has(n)), None)
    if name is None:
        return []
    try:
        pythons.choose(tree.root, home_python)
    except BuildError as exc:
        return [error(name, 1, str(exc))]
    return []


def unwanted(tree) -> list:
    """A warning for each file or folder that should not ship (the first path of each
    folder, not every file under it)."""
    found, reported = [], set()
    for entry in tree.entries:
        parts = entry.path.split("/")
        if any("/".join(parts[:n]) in reported for n in range(1, len(parts))):
            continue
        for pattern, what, fix in UNWANTED:
            if fnmatch.fnmatchcase(parts[-1], pattern):
                shown = entry.path + ("/" if entry.kind == "dir" else "")
                found.append(warning(shown, None, f"{what} should not ship: {fix}"))
                reported.add(entry.path)
                break
    return found


def links(tree) -> list:
    """An error for each link that points out of the app (absolute, or up past its root):
    a deploy's unpacker refuses it."""
    found = []
    for entry in tree.entries:
        if entry.kind != "symlink":
            continue
        target = tree.link(entry.path)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            found.append(error(entry.path, None, f"a link to {target!r}, out of the app: a "
                               "deploy refuses it; keep what it points at in the source, or "
                               "in $SARGE_DATA_DIR (sarge-app.toml's persistent folders)"))
    return found
