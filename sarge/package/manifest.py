"""``sarge-manifest.json``, the manifest ``sarge package`` writes at the root of its
archive (not ``sarge-app.toml``, the app's own declarations: :mod:`sarge.manifest`)::

    {"format": 1, "packager": "sarge 0.1.0",
     "revision": {"git": "3f2a...", "dirty": false},       (null: not a git work tree)
     "procfile": {"web": "gunicorn app:app --bind 127.0.0.1:$PORT"},
     "requirements_sha256": "9c1e...",                     (null: no requirements.txt)
     "wheels": "sarge-wheels",                             (null: no wheelhouse)
     "files": {"app.py": {"sha256": "...", "mode": 420},
               "current": {"link": "releases/1"}, ...}}

Every file and link of the archive but the manifest itself is listed (folders are not:
an empty folder changes nothing that runs). A deploy of an archive that has one
verifies its unpacked folder against it (:func:`verify`) before anything of it runs:
a file changed, missing or added refuses the deploy, naming it.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..errors import ManifestMismatch
from .source import Tree, walk

NAME = "sarge-manifest.json"
WHEELS = "sarge-wheels"
FORMAT = 1
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def listing(tree: Tree, skip=()) -> dict:
    """{path: {"sha256", "mode"} or {"link"}} of every file and link of ``tree``."""
    files = {}
    for entry in tree.entries:
        if entry.path in skip:
            continue
        if entry.kind == "file":
            files[entry.path] = {"sha256": tree.sha256(entry.path), "mode": entry.mode}
        elif entry.kind == "symlink":
            files[entry.path] = {"link": tree.link(entry.path)}
    return files


def make(files: dict, *, revision=None, procfile=None, requirements=None, wheels=None,
         version="") -> bytes:
    """The manifest's bytes (sorted keys: the same for the same tree)."""
    data = {"format": FORMAT, "packager": f"sarge {version}".strip(),
            "revision": revision.to_dict() if revision is not None else None,
            "procfile": procfile or {},
            "requirements_sha256": (hashlib.sha256(requirements).hexdigest()
                                    if requirements is not None else None),
            "wheels": wheels, "files": files}
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def load(folder: str):
    """The manifest at the root of ``folder`` (a dict), or None when there is none;
    :class:`ManifestMismatch` when it is not one sarge can read."""
    path = os.path.join(folder, NAME)
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestMismatch(f"cannot read the archive's {NAME}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as f:
        text = f.read(64 * 1024 * 1024)
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise ValueError("no files")
    except (ValueError, RecursionError) as exc:
        raise ManifestMismatch(f"the archive's {NAME} is not a manifest sarge can read "
                               f"({' '.join(str(exc).split())[:80]}): package it again "
                               "with `sarge package`") from None
    if data.get("format") != FORMAT:
        raise ManifestMismatch(f"the archive's {NAME} has format {data.get('format')!r}; "
                               f"this sarge reads format {FORMAT}: upgrade sarge, or package "
                               "the app with this one")
    return data


def differences(folder: str, data: dict) -> list:
    """(path, what is wrong) for each file of ``folder`` that differs from ``data``."""
    tree = Tree(folder, walk(folder))
    found = listing(tree, skip={NAME})
    wanted = data["files"]
    wrong = []
    for path in sorted(set(wanted) | set(found)):
        if path not in found:
            wrong.append((path, "is missing"))
        elif path not in wanted:
            wrong.append((path, "is not in the manifest (added)"))
        elif found[path] != wanted[path]:
            what = "link" if "link" in found[path] else (
                "content" if found[path].get("sha256") != wanted[path].get("sha256")
                else "mode")
            wrong.append((path, f"has changed ({what})"))
    return wrong


def verify(folder: str):
    """Check the unpacked archive in ``folder`` against its manifest; return the manifest
    (None when it has none). :class:`ManifestMismatch` names the first file that differs."""
    data = load(folder)
    if data is None:
        return None
    wrong = differences(folder, data)
    if wrong:
        path, what = wrong[0]
        more = f"; {len(wrong) - 1} more differ" if len(wrong) > 1 else ""
        raise ManifestMismatch(f"{path} {what} since the archive was packaged (its {NAME} "
                               f"says otherwise{more}): deploy the archive `sarge package` "
                               "wrote, or package it again")
    return data


def revision_of(folder: str, data) -> dict | None:
    """What an instance records of the manifest ``data`` at the root of ``folder``: the
    git revision and dirty flag, the sha256 of the manifest file and the packager (None
    without a manifest)."""
    if data is None:
        return None
    fd = os.open(os.path.join(folder, NAME), _READ)
    with os.fdopen(fd, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    revision = data.get("revision") or {}
    return {"git": revision.get("git"), "dirty": revision.get("dirty"),
            "manifest_sha256": digest, "packager": data.get("packager")}
