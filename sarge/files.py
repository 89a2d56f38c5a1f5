"""Files on disk: read one, write one atomically (temporary file, fsync, rename), lock
one, and remove a tree that an app's user owns (:func:`remove_tree`)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import typing

from .errors import SettingsError


@dataclasses.dataclass(frozen=True)
class File:
    """A file to write: where, what, and its permission bits (what :mod:`sarge.render`
    returns, and :func:`write_file` writes)."""

    path: str
    text: str
    mode: int = 0o644


def write_file(file: File) -> None:
    """Write ``file`` atomically: a temporary file, fsync, then rename over the target."""
    directory = os.path.dirname(file.path)
    tmp = os.path.join(directory, f".{os.path.basename(file.path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file.mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(file.text)
            f.flush()
            os.fchmod(f.fileno(), file.mode)
            os.fsync(f.fileno())
        os.replace(tmp, file.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: str):
    """A file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path} is damaged (not UTF-8 text); `sarge HOME repair` "
                            "rebuilds what it can, or restore it or remove it") from exc


@contextlib.contextmanager
def locked(path: str, blocking: bool = True, create: bool = True):
    """Hold an exclusive flock on the file at ``path`` (created, mode 0600, if missing).

    Without ``blocking``, raise BlockingIOError when another process holds it.
    """
    fd = os.open(path, (os.O_RDWR | os.O_CREAT) if create else os.O_RDONLY, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)


# -- removing a tree that another user may own ----------------------------------------------

#: How deep :func:`remove_tree` goes, and how many entries it removes, before it stops.
MAX_DEPTH = 10_000
MAX_ENTRIES = 1_000_000
#: How many of the folders it is in it keeps open (the rest it opens again through "..").
_HELD = 32
#: How often a folder is listed again when entries appear in it while it is emptied.
_PASSES = 3


class Left(typing.NamedTuple):
    """What :func:`remove_tree` could not remove, and why."""

    path: str
    reason: str


def remove_tree(path: str, *, max_depth: int = MAX_DEPTH,
                max_entries: int = MAX_ENTRIES) -> list:
    """Remove the folder, file or link at ``path`` and everything under it; return what
    is left, as :class:`Left` entries (none: all of it is gone; at most 100 are listed).

    Safe on a tree its app's user owns and changes while it runs: without recursion
    (a folder thousands deep is no deeper for it), through descriptors, never
    following a link (a link is removed, not what it points at) nor entering another
    file system; a folder it finds moved away is left, with what is still in it. It
    stops going deeper than ``max_depth`` folders, and stops altogether after
    ``max_entries`` entries, reporting each. The folder ``path`` is in is trusted.
    """
    parent, name = os.path.split(os.path.abspath(path))
    try:
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    remover = _Remover(parent, fd, name, max_depth, max_entries)
    try:
        remover.run()
    finally:
        remover.close()
    return remover.left


@dataclasses.dataclass
class _Folder:
    """A folder :class:`_Remover` is in: its name in its parent, its (st_dev, st_ino),
    its descriptor (None while closed) and the entries still to remove, as (name,
    listed as a folder) pairs."""

    name: str
    ident: tuple
    fd: object
    entries: list
    passes: int = 0
    left: bool = False  # something of it is reported already: it cannot go, say no more


class _Remover:
    """The explicit stack of :func:`remove_tree`: the folders from the top's parent (open
    throughout, never removed) down to the one being emptied, the last. Only the
    :data:`_HELD` folders nearest the top and the last stay open; the others are opened
    again through the ".." of the one below, and must be the folder that was left."""

    def __init__(self, parent, fd, name, max_depth, max_entries):
        self.top = parent
        st = os.fstat(fd)
        self.stack = [_Folder("", (st.st_dev, st.st_ino), fd, [(name, None)], _PASSES)]
        self.max_depth = max_depth
        self.max_entries = self.budget = max_entries
        self.left = []

    def run(self) -> None:
        while len(self.stack) > 1 or self.stack[0].entries:
            folder = self.stack[-1]
            if not folder.entries:
                self._leave()
            elif self.budget == 0:
                return self._report(f"more than {self.max_entries} entries: stopped there",
                                    folder.entries[-1][0])
            else:
                self.budget -= 1
                self._remove(*folder.entries.pop())

    def close(self) -> None:
        for folder in self.stack:
            if folder.fd is not None:
                os.close(folder.fd)
                folder.fd = None

    def _remove(self, name, is_dir) -> None:
        """Remove the entry ``name`` of the last folder: unlink a file or a link, enter a
        folder. The app's user may swap one for the other meanwhile: each is tried."""
        fd = self.stack[-1].fd
        for _ in range(4):
            if is_dir is not False:
                try:
                    return self._enter(name, os.open(
                        name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=fd))
                except FileNotFoundError:
                    return
                except OSError as exc:
                    if exc.errno not in (errno.ENOTDIR, errno.ELOOP):  # ELOOP: a link
                        return self._report(exc.strerror, name)
                    is_dir = False
                    continue
            try:
                return os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                return
            except IsADirectoryError:
                is_dir = True
            except OSError as exc:
                return self._report(exc.strerror, name)
        self._report("it kept changing while it was removed", name)

    def _enter(self, name, fd) -> None:
        st = os.fstat(fd)
        if len(self.stack) > 1 and st.st_dev != self.stack[1].ident[0]:
            os.close(fd)
            return self._report("on another file system (a mount point?)", name)
        if len(self.stack) > self.max_depth:
            os.close(fd)
            return self._report(f"more than {self.max_depth} folders deep", name)
        self._let_go(len(self.stack) - 1)
        self.stack.append(_Folder(name, (st.st_dev, st.st_ino), fd, []))
        self._list()

    def _list(self) -> None:
        """List the last folder's entries (again); at most what the budget can remove."""
        folder = self.stack[-1]
        folder.passes += 1
        try:
            with os.scandir(folder.fd) as entries:
                for entry in entries:
                    folder.entries.append((entry.name, _is_dir(entry)))
                    if len(folder.entries) > self.budget:
                        break
        except OSError as exc:
            folder.passes = _PASSES
            self._report(exc.strerror)

    def _leave(self) -> None:
        """Remove the emptied last folder from its parent; list it again when entries
        appeared in it meanwhile (a process of the app still runs)."""
        folder, parent = self.stack[-1], self.stack[-2]
        if parent.fd is None and not self._reopen(parent, folder):
            return self._abandon()
        try:
            os.rmdir(folder.name, dir_fd=parent.fd)
        except FileNotFoundError:
            pass  # moved away, or removed, by someone else
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY and not folder.left and folder.passes < _PASSES:
                self._let_go(len(self.stack) - 2)
                return self._list()
            if not folder.left:
                self._report(exc.strerror)
        self.stack.pop()
        os.close(folder.fd)

    def _reopen(self, parent, folder) -> bool:
        """Open ``parent`` again as the ".." of ``folder``; False when that is another
        folder now (``folder`` was moved away)."""
        try:
            fd = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=folder.fd)
        except OSError:
            return False
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != parent.ident:
            os.close(fd)
            return False
        parent.fd = fd
        return True

    def _abandon(self) -> None:
        """Leave the last folder, moved out of the tree, where it went (with what is still
        in it); go on from the nearest folder still open."""
        self._report("moved away while it was removed")
        os.close(self.stack.pop().fd)
        while self.stack[-1].fd is None:
            self.stack.pop()

    def _let_go(self, index) -> None:
        """Close the folder at ``index`` unless it is one of the :data:`_HELD` first."""
        folder = self.stack[index]
        if index > _HELD and folder.fd is not None:
            os.close(folder.fd)
            folder.fd = None

    def _report(self, reason, name=None) -> None:
        """Report the last folder (or its entry ``name``) as left, and so every folder it
        is in (their removal then fails, and says no more)."""
        for folder in self.stack[1:]:
            folder.left = True
        if len(self.left) < 100:
            names = [f.name for f in self.stack[1:]] + ([name] if name is not None else [])
            if len(names) > 8:  # thousands deep: the top and the end say where
                names[4:-3] = [f"[{len(names) - 7} more]"]
            self.left.append(Left(os.path.join(self.top, *names), reason))


def _is_dir(entry):
    """True or False as the listing says (a link is not a folder); None when unknown."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return None
