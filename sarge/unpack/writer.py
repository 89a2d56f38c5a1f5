"""Writing members into an instance folder by descriptor (:class:`Writer`): each
entry created anew by the user that unpacks, never through a link."""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat

from ..errors import BuildError
from .checks import KEPT_BITS, MAX_DEPTH, path_parts, too_deep
from .tree import FOLDER

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class Writer:
    """Writes members into the folder open at ``root``, by their paths in it.

    Never through a link: each folder on the way is opened with ``O_NOFOLLOW``.
    Every entry is created anew by this process's user, who owns it; a later member
    of the same name replaces an earlier one, as tar does. Files get no more than
    ``budget`` bytes in all. A folder gets its mode and mtime in :meth:`finish`,
    once what it holds is written (its owner may not be allowed to write it then).
    """

    def __init__(self, root: int, budget: int):
        self.root = root
        self.budget = self.left = budget
        self.folders = {}  # path -> (mode, mtime in ns or None), for finish()
        self._last = (None, None)  # the folder last written into, and its descriptor

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._forget()

    def folder(self, path: str, mode: int, mtime_ns) -> None:
        parts = path_parts(path)
        if not parts:
            return  # "." is the instance folder itself: it keeps the mode sarge gave it
        if len(parts) > MAX_DEPTH:
            raise too_deep(path)
        parent = self._folder(parts[:-1])
        try:
            os.mkdir(parts[-1], 0o700, dir_fd=parent)
        except FileExistsError:  # named twice, or made before for a member inside it
            if not stat.S_ISDIR(os.stat(parts[-1], dir_fd=parent,
                                        follow_symlinks=False).st_mode):
                raise
        self.folders["/".join(parts)] = (mode, mtime_ns)

    def file(self, path: str, read, mode: int, mtime_ns) -> None:
        """Write a file of what ``read(size)`` returns, until it returns nothing."""
        parent, name = self._place(path)
        out = self._replacing(lambda: os.open(name, _CREATE, 0o600, dir_fd=parent),
                              parent, name)
        try:
            self._fill(out, read, path)
            os.fchmod(out, mode & KEPT_BITS)
            _set_mtime(out, mtime_ns)
        finally:
            os.close(out)

    def symlink(self, path: str, target: str) -> None:
        parent, name = self._place(path)
        self._replacing(lambda: os.symlink(target, name, dir_fd=parent), parent, name)

    def hardlink(self, path: str, target: str) -> None:
        """Link ``path`` to the member ``target`` written before, reached without
        following any link (one could lead out from where it is)."""
        parts = path_parts(posixpath.normpath(target))
        if not parts:
            raise BuildError(f"refused: the hard link {path!r} points at the instance itself")
        source = self._open(parts[:-1], create=False)
        try:
            parent, name = self._place(path)
            self._replacing(lambda: os.link(parts[-1], name, src_dir_fd=source,
                                            dst_dir_fd=parent, follow_symlinks=False),
                            parent, name)
        finally:
            os.close(source)

    def finish(self) -> None:
        """Give each folder its mode and mtime, the deepest first."""
        self._forget()
        for path in sorted(self.folders, key=lambda p: p.count("/"), reverse=True):
            mode, mtime_ns = self.folders[path]
            fd = self._open(path.split("/"), create=False)
            try:
                os.fchmod(fd, mode & KEPT_BITS)
                _set_mtime(fd, mtime_ns)
            finally:
                os.close(fd)

    def _fill(self, out: int, read, path: str) -> None:
        while True:
            chunk = read(min(_CHUNK, self.left + 1))  # one byte more shows a file that grew
            if not chunk:
                return
            self.left -= len(chunk)
            if self.left < 0:
                raise BuildError(f"refused: {path!r} grew after the source was checked: "
                                 f"the source now holds more than the {self.budget} bytes "
                                 "measured")
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]

    def _replacing(self, make, parent: int, name: str):
        try:
            return make()
        except FileExistsError:
            os.unlink(name, dir_fd=parent)  # a folder is not replaced: EISDIR
            return make()

    def _place(self, path: str):
        """(descriptor of the folder that holds ``path``, its last name)."""
        parts = path_parts(path)
        if not parts:
            raise BuildError(f"refused: {path!r} names the instance folder itself")
        return self._folder(parts[:-1]), parts[-1]

    def _folder(self, parts: list) -> int:
        key = "/".join(parts)
        if self._last[0] != key:  # members come folder by folder: keep the last one open
            self._forget()
            self._last = (key, self._open(parts, create=True))
        return self._last[1]

    def _forget(self) -> None:
        if self._last[1] is not None:
            os.close(self._last[1])
        self._last = (None, None)

    def _open(self, parts: list, create: bool) -> int:
        """A new descriptor of the folder ``parts`` under root, each step with
        ``O_NOFOLLOW``; missing folders are made (mode 0755 in the end) when ``create``."""
        fd = os.dup(self.root)
        try:
            for i, part in enumerate(parts):
                try:
                    sub = os.open(part, FOLDER, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o700, dir_fd=fd)
                    sub = os.open(part, FOLDER, dir_fd=fd)
                    self.folders.setdefault("/".join(parts[:i + 1]), (0o755, None))
                os.close(fd)
                fd = sub
        except BaseException:
            os.close(fd)
            raise
        return fd


def _set_mtime(fd: int, mtime_ns) -> None:
    if mtime_ns is not None:
        with contextlib.suppress(OverflowError, ValueError):  # out of the kernel's range
            os.utime(fd, ns=(mtime_ns, mtime_ns))
