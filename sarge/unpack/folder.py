"""Copying a folder source entry by entry, each checked again as it is copied: the
check before saw the folder as it was then, and the app's user may change it."""

from __future__ import annotations

import errno
import functools
import os
import stat

from ..errors import BuildError
from .checks import check_link, check_members, check_space, special
from .tree import FOLDER, dir_members, opened
from .writer import Writer

_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def copy(source, target, after_check, exclude=()):
    """Copy the folder ``source`` into ``target``, less the paths ``exclude`` names (and
    what is under them); return the name of its one folder whose content was copied (a
    folder that holds one folder and nothing else), or None."""
    with opened(source) as top, opened(target) as root:
        folder = None if exclude else _single_folder(top)
        src = top if folder is None else os.open(folder, FOLDER, dir_fd=top)
        try:
            members = dir_members(src, exclude)
            budget = check_members(members)
            check_space(target, budget)
            if after_check is not None:
                after_check()
            links = {m.name: m.target for m in members if m.kind == "symlink"}
            with Writer(root, budget) as writer:
                _FolderCopy(source, writer, links, set(exclude)).folder(src)
                writer.finish()
        finally:
            if src != top:
                os.close(src)
    return folder


def _single_folder(fd: int):
    """The name of the one entry of the folder open at ``fd`` when it is a folder (not a
    link to one), else None."""
    names = os.listdir(fd)
    if len(names) != 1:
        return None
    st = os.stat(names[0], dir_fd=fd, follow_symlinks=False)
    return names[0] if stat.S_ISDIR(st.st_mode) else None


class _FolderCopy:
    """Copies the folder open at a descriptor, entry by entry, checking each as it is
    copied: the check before saw the folder as it was then. ``links`` are the links as
    the check saw them ({path: target}), updated as they are copied."""

    def __init__(self, source: str, writer, links: dict, exclude=frozenset()):
        self.source = source
        self.writer = writer
        self.links = links
        self.exclude = exclude

    def folder(self, fd: int, prefix: str = "") -> None:
        for name in sorted(os.listdir(fd)):
            path = prefix + name
            if path in self.exclude:
                continue
            try:
                self.entry(fd, name, path)
            except OSError as exc:
                raise BuildError(f"cannot copy {self.source}: {path!r}: "
                                 f"{exc.strerror or exc}") from exc

    def entry(self, fd: int, name: str, path: str) -> None:
        opened = _open_entry(fd, name, path)
        if opened is None:  # O_NOFOLLOW met a link: copy the link itself
            return self.link(fd, name, path)
        try:
            st = os.fstat(opened)  # what was opened, whatever the name points at now
            self.links.pop(path, None)
            if stat.S_ISDIR(st.st_mode):
                self.writer.folder(path, st.st_mode, st.st_mtime_ns)
                self.folder(opened, path + "/")
            elif stat.S_ISREG(st.st_mode):
                self.writer.file(path, functools.partial(os.read, opened), st.st_mode,
                                 st.st_mtime_ns)
            else:  # a FIFO or a device node swapped in since the check
                raise special(path)
        finally:
            os.close(opened)

    def link(self, fd: int, name: str, path: str) -> None:
        try:
            target = os.readlink(name, dir_fd=fd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            raise BuildError(f"refused: {path!r} changed while {self.source} was "
                             "copied") from None
        self.links[path] = target
        check_link(path, path, "symlink", target, self.links)
        self.writer.symlink(path, target)


def _open_entry(fd: int, name: str, path: str):
    """The entry ``name`` of the folder open at ``fd``, open for reading without following
    it or waiting (a FIFO); None for a link."""
    try:
        return os.open(name, _OPEN, dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        if exc.errno == errno.ENXIO:  # a socket
            raise special(path) from None
        raise
