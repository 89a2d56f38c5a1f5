"""``sarge package``: validate a source, then write it as a reproducible archive
(:mod:`sarge.package.archive`) with its manifest (:mod:`sarge.package.manifest`) and, with
``wheels``, a wheelhouse (:mod:`sarge.package.wheels`). Refused, with nothing written,
when validate finds an error."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from ..errors import NotDeployable, PackageError
from . import archive, manifest
from . import wheels as wheelhouse
from .findings import deployable
from .source import opened
from .validate import check_tree

#: Paths of a source that ``package`` writes itself (an older manifest, a wheelhouse).
OWN = (manifest.NAME, wheelhouse.FOLDER)


def package(source: str, output: str, *, wheels: bool = False, strict: bool = False,
            pip_args=(), progress=None) -> dict:
    """Package ``source`` (a folder or an archive) as the tar.gz ``output``; return what
    was written: ``archive``, ``sha256``, ``files`` (their number, the manifest's
    excluded), ``wheels`` (names), ``revision`` (git, dirty) and ``findings`` (the
    warnings). :class:`NotDeployable` when validate finds an error."""
    from .. import __version__

    progress = progress or (lambda message: None)
    if not output.endswith((".tar.gz", ".tgz")):
        raise PackageError(f"-o {output}: name the archive NAME.tar.gz (or .tgz), the "
                           "archives a deploy reads")
    with opened(source) as tree:
        found, processes = check_tree(tree, strict)
        if not deployable(found):
            errors = [f for f in found if f.error]
            raise NotDeployable(f"{source} is not deployable ({len(errors)} error(s) above): "
                                "nothing was packaged", found)
        skip = set(OWN) | _inside(tree.root, output)
        tree.entries = [e for e in tree.entries
                        if e.path.split("/")[0] not in skip and e.path not in skip]
        progress(f"{len(tree.files())} files from {source}")
        scratch = tempfile.mkdtemp(prefix="sarge-package-")
        try:
            members, names = _wheels(tree, scratch, pip_args, progress) if wheels else ([], [])
            files = manifest.listing(tree)
            files.update(_listed(members))
            requirements = tree.read("requirements.txt") if tree.has("requirements.txt") \
                else None
            text = manifest.make(files, revision=tree.revision, procfile=processes,
                                 requirements=requirements,
                                 wheels=wheelhouse.FOLDER if wheels else None,
                                 version=__version__)
            members += [_member(tree, e) for e in tree.entries]
            members.append(archive.Member(manifest.NAME, "file", 0o644, data=text))
            digest = archive.write(members, output)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return {"archive": os.path.abspath(output), "sha256": digest, "files": len(files),
            "wheels": names,
            "revision": tree.revision.to_dict() if tree.revision is not None else None,
            "findings": [f.to_dict() for f in found]}


def _inside(root: str, output: str) -> set:
    """The path of ``output`` relative to ``root`` when it is inside (it is not packed)."""
    rel = os.path.relpath(os.path.abspath(output), os.path.abspath(root))
    return set() if rel.startswith("..") else {rel.replace(os.sep, "/")}


def _member(tree, entry) -> archive.Member:
    if entry.kind == "symlink":
        return archive.Member(entry.path, "symlink", target=tree.link(entry.path))
    source = os.path.join(tree.root, entry.path) if entry.kind == "file" else None
    return archive.Member(entry.path, entry.kind, entry.mode, source=source)


def _wheels(tree, scratch, pip_args, progress) -> tuple:
    """(the wheelhouse's members, the wheels' names)."""
    if not tree.has("requirements.txt"):
        raise PackageError("--wheels: the source has no requirements.txt, so no wheel to "
                           "add; package it without --wheels")
    target = os.path.join(scratch, wheelhouse.FOLDER)
    os.mkdir(target)
    progress("pip wheel -r requirements.txt")
    names = wheelhouse.build(tree.root, os.path.join(tree.root, "requirements.txt"), target,
                             pip_args)
    progress(f"{len(names)} wheels")
    members = [archive.Member(wheelhouse.FOLDER, "dir", 0o755)]
    members += [archive.Member(f"{wheelhouse.FOLDER}/{n}", "file", 0o644,
                               source=os.path.join(target, n)) for n in names]
    return members, names


def _listed(members) -> dict:
    """The manifest's entries of the wheelhouse's files."""
    listed = {}
    for member in members:
        if member.kind == "file":
            with open(member.source, "rb") as f:
                listed[member.path] = {"sha256": hashlib.sha256(f.read()).hexdigest(),
                                       "mode": 0o644}
    return listed
