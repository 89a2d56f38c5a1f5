"""Folders read by descriptor, never following a link: the walk that both a folder
source and the check of an unpacked instance (:func:`check_tree`) use."""

from __future__ import annotations

import contextlib
import os
import stat

from ..errors import BuildError
from .checks import KEPT_BITS, MAX_DEPTH, Member, check_members, too_deep, why

#: How a folder on the way is opened: never through a link.
FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def opened(path: str):
    """The folder at ``path`` (its own path is followed, as the operator gave it), open."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def walk(fd: int, prefix: str = "", exclude=frozenset()):
    """(path, lstat, folder descriptor, name) of every entry under the folder open at
    ``fd``, a folder before what it holds; links are not followed; the paths in
    ``exclude`` (and what they hold) are left out."""
    for name in sorted(os.listdir(fd)):
        path = prefix + name
        if path in exclude:
            continue
        if path.count("/") >= MAX_DEPTH:
            raise too_deep(path)
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        yield path, st, fd, name
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, FOLDER, dir_fd=fd)
            try:
                yield from walk(sub, path + "/", exclude)
            finally:
                os.close(sub)


def member(path, st, fd, name) -> Member:
    if stat.S_ISLNK(st.st_mode):
        return Member(path, "symlink", 0, os.readlink(name, dir_fd=fd))
    if stat.S_ISDIR(st.st_mode):
        return Member(path, "dir")
    if stat.S_ISREG(st.st_mode):
        return Member(path, "file", st.st_size)
    return Member(path, "special")


def dir_members(fd: int, exclude=()) -> list:
    """The members of the folder open at ``fd`` (less ``exclude``), as the checks see them."""
    return [member(*entry) for entry in walk(fd, exclude=frozenset(exclude))]


def check_tree(folder: str) -> None:
    """Refuse (raise :class:`BuildError`, naming the file) an unpacked ``folder`` with an
    entry that is not the unpacking user's, that group or others can write, that is
    setuid, setgid or sticky, or that :func:`check_members` refuses."""
    uid = os.geteuid()
    members = []
    try:
        with opened(folder) as fd:
            for path, st, parent, name in walk(fd):
                where = os.path.join(folder, path)
                if st.st_uid != uid:
                    raise BuildError(f"refused: {where} belongs to uid {st.st_uid}, not to "
                                     f"uid {uid} that unpacked it")
                mode = stat.S_IMODE(st.st_mode)
                if not stat.S_ISLNK(st.st_mode) and mode & ~KEPT_BITS:
                    raise BuildError(f"refused: {where} has mode {mode:04o}: group or others "
                                     "can write it, or it is setuid, setgid or sticky")
                members.append(member(path, st, parent, name))
    except OSError as exc:
        raise BuildError(f"cannot check {folder}: {why(exc)}") from exc
    check_members(members)
