"""Extracting a tar archive member by member through :class:`~.writer.Writer`, never
with ``TarFile.extractall``: the owners it names are never restored, whatever the
Python (3.11.2, in Debian 12, has no extraction filters)."""

from __future__ import annotations

import tarfile

from ..errors import BuildError
from .checks import Member, check_members, check_space, single_folder, strip_folder, why
from .sources import UNREADABLE
from .tree import opened
from .writer import Writer


def extract(source, target, after_check):
    """Extract the archive ``source`` into ``target``; return the name of the one folder
    whose content was extracted (:func:`~.checks.single_folder`), or None."""
    try:
        with tarfile.open(source) as archive, opened(target) as root:
            infos = archive.getmembers()
            members = [_tar_member(info) for info in infos]
            folder = single_folder(members)
            if folder is not None:  # its prefix is stripped from every name as it is written
                members = [strip_folder(m, folder) for m in members]
            budget = check_members(members)
            check_space(target, budget)
            if after_check is not None:
                after_check()
            with Writer(root, budget) as writer:
                for info, member in zip(infos, members):
                    _extract_member(archive, info, member, writer, source)
                writer.finish()
            return folder
    except UNREADABLE as exc:
        raise BuildError(f"{source} is not a readable tar archive ({why(exc)})") from exc
    except OSError as exc:
        if not exc.errno:  # gzip's and bz2's errors for broken data
            raise BuildError(f"{source} is not a readable tar archive ({why(exc)})") from exc
        raise BuildError(f"cannot unpack {source}: {why(exc)}") from exc


def _extract_member(archive, info, member, writer, source) -> None:
    """Write one checked member of ``archive`` (``info``) where ``member`` (the checked
    value: its name, and a link's target) says; its owner is never restored."""
    try:
        if info.isdir():
            writer.folder(member.name, info.mode, _mtime_ns(info))
        elif info.issym():
            writer.symlink(member.name, member.target)
        elif info.islnk():
            writer.hardlink(member.name, member.target)
        else:
            with archive.extractfile(info) as data:
                writer.file(member.name, data.read, info.mode, _mtime_ns(info))
    except OSError as exc:
        if not exc.errno:
            raise
        raise BuildError(f"cannot unpack {source}: {info.name!r}: {exc.strerror}") from exc


def _tar_member(info) -> Member:
    if info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    elif info.isdir():
        kind = "dir"
    elif info.isreg():
        kind = "file"
    else:
        kind = "special"
    return Member(info.name, kind, info.size, info.linkname)


def _mtime_ns(info):
    try:
        return int(info.mtime * 1_000_000_000)
    except (OverflowError, ValueError):  # a pax header can say "inf" or "nan"
        return None
