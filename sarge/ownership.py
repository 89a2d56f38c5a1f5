"""Who owns what an app uses: the folders sarge gives an app's user, the code it shares
with it (readable, not writable), the virtualenv it lets the user install into and
takes back after. Every change goes through a descriptor or never follows a link:
the user may swap an entry for a link at any moment."""

from __future__ import annotations

import os
import stat

from .errors import SettingsError
from .users import RunAs, _can_write, switches


def give(path: str, run_as: RunAs | None, mode: int, gid: int | None = None) -> None:
    """Make the folder ``path`` (sarge's own, created by sarge) the user's, with ``mode``
    (and in the group ``gid``, else the user's own).

    Only the folder itself changes owner: a folder already owned by another
    user (named before the setting changed) is refused, not taken over
    recursively, so sarge never follows what that user left in it.
    """
    os.makedirs(path, mode, exist_ok=True)
    if run_as is None or run_as.uid == 0:
        if gid is not None:  # root's, in a folder only root can change: no link to fear
            os.chown(path, -1, gid)
            os.chmod(path, mode)
        return
    # Through a descriptor opened without following links: the user may own the
    # folder already, and swap it for a link between a look and a change.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise SettingsError(f"{path} is not a folder; remove it") from None
    try:
        st = os.fstat(fd)
        if st.st_uid not in (run_as.uid, 0, os.geteuid()):
            raise SettingsError(
                f"{path} belongs to uid {st.st_uid}, not to {run_as.name}, who now runs its "
                f"app; give it to {run_as.name} with: chown -R {run_as.name}: {path}")
        gid = run_as.gid if gid is None else gid
        if st.st_uid != run_as.uid or st.st_gid != gid:
            os.fchown(fd, run_as.uid, gid)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def share_code(folder: str, run_as: RunAs | None, unless_shared: bool = False) -> None:
    """Let the user read (not change) an instance's code: each file and folder stays
    root's, joins the user's group, and gets group read (and search, and execute
    where its owner has it); others lose access. Run on a tree only root can write.

    ``unless_shared``: do nothing when the folder is already in the user's group (a
    start: the app's user changed since its deploy when it is not)."""
    if run_as is None or run_as.uid == 0:
        return
    if unless_shared and os.stat(folder).st_gid == run_as.gid:
        return
    for root, dirs, files in os.walk(folder):
        st = os.lstat(root)
        if _can_write(st, run_as) or st.st_uid not in (0, os.geteuid()):
            # another user could swap an entry for a link while root changes its mode
            raise SettingsError(f"{root} can be changed by uid {st.st_uid} or others: sarge "
                                f"will not share it with {run_as.name}; make it root's, "
                                "writable by root only")
        for name in [None, *dirs, *files]:
            path = root if name is None else os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                os.lchown(path, -1, run_as.gid)
                continue
            mode = stat.S_IMODE(st.st_mode)
            mode |= stat.S_IRGRP | (stat.S_IXGRP if mode & stat.S_IXUSR else 0)
            mode &= ~(stat.S_IWGRP | stat.S_IRWXO | stat.S_ISUID | stat.S_ISGID)
            os.lchown(path, -1, run_as.gid)
            os.chmod(path, mode)


def can_execute(path: str, run_as: RunAs) -> bool:
    """True when ``run_as`` may run the program at ``path``: it can search every folder on
    the way (links followed, as exec does) and execute the file. (From the modes alone:
    no process is started.)"""
    return barrier(path, run_as) is None


def barrier(path: str, run_as: RunAs):
    """What stops ``run_as`` from running the program at ``path``: the first folder on the
    way it cannot search (of ``path`` as given, then of the file its links lead to), or
    the file itself; None when nothing does. A path that does not exist is its own
    barrier."""
    real = os.path.realpath(path)
    folders = []
    for start in (os.path.abspath(path), real):
        parent = os.path.dirname(start)
        while parent not in folders:
            folders.append(parent)
            if parent == os.path.dirname(parent):
                break
            parent = os.path.dirname(parent)
    for folder in sorted(folders, key=len):  # the outermost first: /root before what is in it
        try:
            if not _may(os.stat(folder), run_as, stat.S_IXUSR):
                return folder
        except OSError:
            return folder
    try:
        return None if _may(os.stat(real), run_as, stat.S_IXUSR) else real
    except OSError:
        return real


def _may(st, run_as: RunAs, user_bit: int) -> bool:
    """Whether ``run_as`` has the permission ``user_bit`` (as S_IXUSR) on a file: through
    its owner's bits, its group's, or everyone's, as the kernel decides."""
    if run_as.uid == 0:
        return True
    if st.st_uid == run_as.uid:
        return bool(st.st_mode & user_bit)
    if st.st_gid in run_as.groups:
        return bool(st.st_mode & (user_bit >> 3))
    return bool(st.st_mode & (user_bit >> 6))


def hand_over(folder: str, run_as: RunAs | None, skip=()) -> None:
    """Give ``run_as`` a tree root has made (an empty virtualenv, for the user to install
    into; an instance's code, for its build). ``skip``: paths relative to ``folder`` left
    as they are, and not walked into (the folders an instance's user owns already).

    The tree is given from the bottom up, through descriptors, never following a link:
    each folder is opened (``O_NOFOLLOW``) from its parent, still root's, and becomes the
    user's only once everything in it is; an entry is given by name in a folder only
    root can change. So a process the user already runs (the instance serving now) can
    never swap an entry for a link and have root give it a file elsewhere.
    """
    if not switches(run_as) or run_as.uid == 0:
        return
    skip = {os.path.join(folder, path) for path in skip}
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _hand_over_folder(top, folder, run_as, skip, 0)
    finally:
        os.close(top)


def _hand_over_folder(fd: int, path: str, run_as: RunAs, skip, depth: int) -> None:
    """Give what the folder open at ``fd`` holds, then the folder itself."""
    if depth > 256:
        raise SettingsError(f"{path} is nested too deeply to hand over")
    for entry in os.scandir(fd):
        where = os.path.join(path, entry.name)
        if where in skip:
            continue
        st = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                            dir_fd=fd)
            try:
                _hand_over_folder(child, where, run_as, skip, depth + 1)
            finally:
                os.close(child)
        else:
            os.chown(entry.name, run_as.uid, run_as.gid, dir_fd=fd, follow_symlinks=False)
    os.fchown(fd, run_as.uid, run_as.gid)


def reclaim(folder: str, run_as: RunAs | None, skip=()) -> None:
    """Take back for root a tree that ``run_as`` wrote (a virtualenv it installed into,
    an instance's code after its build), leaving it readable, not writable, by the
    user: every entry becomes root's, in the user's group, without write bits for group
    and others, nor setuid/setgid/sticky. ``skip``: paths relative to ``folder`` (an
    instance's writable folders) left to the user, whatever they have become.

    The walk goes through descriptors and never follows a link: each folder is opened
    (``O_NOFOLLOW``) and taken before its entries are looked at, so the user, who may
    still run a process, can no longer swap an entry for a link to a file elsewhere.
    Anything that is not a regular file, folder or link is refused.
    """
    if not switches(run_as) or run_as.uid == 0:
        return
    skip = {os.path.join(folder, path) for path in skip}
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    stack = [(top, folder)]
    try:
        _take(top, run_as, folder)
        while stack:
            fd, path = stack.pop()
            try:
                for entry in os.scandir(fd):
                    where = os.path.join(path, entry.name)
                    if where in skip:
                        continue
                    child = _reclaim_entry(fd, entry.name, run_as, where)
                    if child is not None:
                        stack.append((child, where))
            finally:
                os.close(fd)
    except BaseException:
        for fd, _ in stack:
            os.close(fd)
        raise


def _reclaim_entry(parent: int, name: str, run_as: RunAs, where: str):
    """Take one entry of the folder ``parent``; return a descriptor of it when it is a
    folder to walk next."""
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        os.chown(name, 0, run_as.gid, dir_fd=parent, follow_symlinks=False)
        return None
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
    else:
        raise SettingsError(f"{where} is a device, FIFO or socket, which an installed "
                            "environment has no use for; sarge refuses it")
    try:
        _take(fd, run_as, where)
    except BaseException:
        os.close(fd)
        raise
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        return fd
    os.close(fd)
    return None


def _take(fd: int, run_as: RunAs, where: str) -> None:
    """Make the opened file root's, in the user's group, readable by the group alone."""
    st = os.fstat(fd)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        # swapped between the look and the open
        raise SettingsError(f"{where} changed while sarge took it back; sarge refuses it")
    os.fchown(fd, 0, run_as.gid)
    mode = stat.S_IMODE(st.st_mode)
    mode |= stat.S_IRUSR | stat.S_IRGRP | (stat.S_IXGRP if mode & stat.S_IXUSR else 0)
    mode &= ~(stat.S_IWGRP | stat.S_IRWXO | stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)
    os.fchmod(fd, mode)
