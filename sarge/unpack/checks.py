"""The checks of a source's members, made before anything is written: absolute paths,
``..``, links that lead out of the instance (directly or through other links),
members written through a link, device nodes, FIFOs and sockets, and a source
larger than the free space. Pure: members are values (:class:`Member`), wherever
they come from (an archive's headers, a folder walked by descriptor).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re

from ..errors import BuildError

#: The most names a path in a source may have (``a/b/c`` has three): each level of a
#: folder being walked holds a descriptor open.
MAX_DEPTH = 128
#: What is kept of a member's mode: no setuid, setgid, sticky, group or other write.
KEPT_BITS = 0o755


@dataclasses.dataclass(frozen=True)
class Member:
    """What the checks need to know of one file of a source."""

    name: str          # relative path, '/'-separated
    kind: str          # 'file', 'dir', 'symlink', 'hardlink' or 'special'
    size: int = 0
    target: str = ""   # link target, for links


def check_members(members) -> int:
    """Refuse unsafe members (raise :class:`BuildError`); return the total size of files."""
    members = list(members)
    links = set()
    symlinks = {"/".join(path_parts(m.name)): m.target for m in members if m.kind == "symlink"}
    total = 0
    for m in members:
        name = m.name
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise BuildError(f"refused: {name!r} has an absolute path")
        parts = path_parts(name)
        if ".." in parts:
            raise BuildError(f"refused: {name!r} points out of the instance ('..')")
        if len(parts) > MAX_DEPTH:
            raise too_deep(name)
        path = "/".join(parts)
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise BuildError(f"refused: {name!r} would be written through the link "
                                 f"{'/'.join(parts[:i])!r}")
        if m.kind == "special":
            raise special(name)
        if m.kind in ("symlink", "hardlink"):
            check_link(name, path, m.kind, m.target, symlinks)
            links.add(path)
        elif m.kind == "file":
            total += m.size
    return total


def check_link(name, path, kind, target, symlinks) -> None:
    """Refuse a link (``kind`` 'symlink' or 'hardlink') that leads out of the instance,
    directly or through the other ``symlinks`` ({path: target})."""
    if kind == "symlink":
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    else:
        resolved = posixpath.normpath(target)
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise BuildError(f"refused: the link {name!r} points out of the instance "
                         f"(to {target!r})")
    if kind == "symlink" and _follow(path.split("/")[:-1], target, symlinks) is None:
        # through the other links it passes, it leads out (or round in a loop)
        raise BuildError(f"refused: the link {name!r} points out of the instance "
                         f"through other links (to {target!r})")


def _follow(folder: list, target: str, links: dict, hops=None):
    """Where ``target``, followed from ``folder`` (a list of names), leads inside the
    instance, following the links among the members as the kernel would; None when
    it leads out. As for the kernel, 40 links followed in all end the walk (a loop
    leads nowhere, so not out either)."""
    hops = [0] if hops is None else hops
    if target.startswith("/"):
        return None
    parts = list(folder)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
        key = "/".join(parts)
        if key in links:
            hops[0] += 1
            if hops[0] > 40:
                return parts  # ELOOP for the kernel: it stops here, inside
            parts = _follow(parts[:-1], links[key], links, hops)
            if parts is None:
                return None
    return parts


def path_parts(name: str) -> list:
    return [p for p in name.split("/") if p not in ("", ".")]


def special(name) -> BuildError:
    return BuildError(f"refused: {name!r} is a device node, FIFO or socket")


def too_deep(name) -> BuildError:
    return BuildError(f"refused: {name!r} is nested more than {MAX_DEPTH} levels deep")


def check_space(target, needed) -> None:
    st = os.statvfs(target)
    free = st.f_bavail * st.f_frsize
    if needed > free:
        raise BuildError(f"refused: the source needs {needed} bytes and {target} has {free} free")


def why(exc) -> str:
    """An error's message on one line (tarfile's for an unknown format has five)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, OSError) and exc.filename:
        text += f": {exc.filename}"
    return " ".join(text.split())


def single_folder(members) -> str | None:
    """The name of the one folder a source's root holds, when it holds that and nothing
    else (``tar czf app.tgz app/``, ``git archive --prefix=app/``, a GitHub tarball's
    ``owner-repo-sha/``): its content is then the app. None otherwise. ``members``:
    :class:`Member` values; a folder is one named as such, or one that holds others."""
    top, folders = set(), set()
    for m in members:
        parts = path_parts(m.name)
        if not parts:
            continue  # "." or "./": the root itself
        top.add(parts[0])
        if len(parts) > 1 or m.kind == "dir":
            folders.add(parts[0])
    if len(top) != 1:
        return None
    (name,) = top
    kinds = {m.kind for m in members if path_parts(m.name) == [name]}
    if name not in folders or kinds - {"dir"}:
        return None  # a file, or a link, named like the folder: not a folder
    return name


def strip_folder(member: Member, folder: str) -> Member:
    """``member`` as it is inside ``folder`` (:func:`single_folder`): its name without
    the folder, and a hard link's target too (a target outside the folder would lead
    out of the instance, and stays refused: it becomes ``../TARGET``). A symbolic
    link's target is relative to where the link is, and moves up with it."""
    parts = path_parts(member.name)
    name = "/".join(parts[1:]) or "."
    target = member.target
    if member.kind == "hardlink":
        target_parts = path_parts(posixpath.normpath(target))
        target = ("/".join(target_parts[1:]) if target_parts[:1] == [folder]
                  else "../" + target)
    return dataclasses.replace(member, name=name, target=target)
