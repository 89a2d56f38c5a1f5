"""A source as validate and package read it: a :class:`Tree` (a root folder and the
entries that ship from it). A folder is read where it is (:mod:`.selection` chooses
its entries); an archive is unpacked first, by sarge's safe unpacker, into a
temporary folder removed afterwards."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile

from .. import unpack
from ..errors import BuildError, PackageError
from .selection import Entry, select

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclasses.dataclass
class Tree:
    """``root``: the folder; ``entries``: what ships from it, sorted (:class:`Entry`);
    ``revision``: its git :class:`~.selection.Revision` or None; ``kind``: ``dir`` or
    ``tar``; ``name``: the source as given, for messages."""

    root: str
    entries: list
    revision: object = None
    kind: str = "dir"
    name: str = ""

    def has(self, path: str) -> bool:
        return any(e.path == path and e.kind == "file" for e in self.entries)

    def files(self) -> list:
        return [e for e in self.entries if e.kind == "file"]

    def read(self, path: str) -> bytes:
        """The bytes of the file ``path`` (never through a link)."""
        fd = os.open(os.path.join(self.root, path), _READ)
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def text(self, path: str):
        """The file ``path`` as text (UTF-8), or None when it is not."""
        try:
            return self.read(path).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def sha256(self, path: str) -> str:
        digest = hashlib.sha256()
        fd = os.open(os.path.join(self.root, path), _READ)
        with os.fdopen(fd, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def link(self, path: str) -> str:
        return os.readlink(os.path.join(self.root, path))


@contextlib.contextmanager
def opened(source: str):
    """The :class:`Tree` of ``source`` (a folder, or a .tar/.tar.gz/.tgz archive);
    :class:`PackageError` for anything else."""
    try:
        kind = unpack.source_kind(source)
    except BuildError as exc:
        raise PackageError(str(exc)) from exc
    if kind == "dir":
        entries, revision = select(source)
        yield Tree(source, entries, revision, "dir", source)
        return
    scratch = tempfile.mkdtemp(prefix="sarge-validate-")
    try:
        try:
            unpack.unpack(source, scratch)
        except BuildError as exc:
            raise PackageError(str(exc)) from exc
        yield Tree(scratch, walk(scratch), None, "tar", source)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def walk(root: str) -> list:
    """Every entry under ``root`` (an unpacked archive, an instance's folder), sorted, none
    followed."""
    found = []
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                found.append(Entry(prefix + name, "symlink", 0o777))
            elif os.path.isdir(path):
                found.append(Entry(prefix + name, "dir", 0o755))
            elif os.path.isfile(path):
                mode = 0o755 if os.stat(path).st_mode & 0o100 else 0o644
                found.append(Entry(prefix + name, "file", mode))
    return sorted(found, key=lambda e: e.path)


def stage(tree: Tree, target: str) -> None:
    """Copy what ships of ``tree`` into the existing folder ``target`` (for ``--deep``:
    its build step may write there, never in the source)."""
    for entry in tree.entries:
        path = os.path.join(target, entry.path)
        if entry.kind == "dir":
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if entry.kind == "symlink":
            os.symlink(tree.link(entry.path), path)
        else:
            with open(path, "wb") as f:
                f.write(tree.read(entry.path))
            os.chmod(path, entry.mode)
