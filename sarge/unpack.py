"""Unpacking a source (a folder or a tar archive) into an instance folder, safely.

:func:`unpack` first checks every member of the source (:func:`check_members`):
absolute paths, ``..``, links that point out of the instance (or members written
through a link), device nodes, FIFOs and sockets are refused, and so is a source
larger than the free space, before anything is written. Then it writes each
member itself, never with :func:`shutil.copytree` or ``TarFile.extractall``:

- nothing of the source is followed: each entry of a folder is opened relative to
  its folder's descriptor with ``O_NOFOLLOW | O_NONBLOCK`` and ``fstat``-ed, a link
  is read again with ``readlink``, and what is not a regular file, a folder or a
  link that passes the checks *when it is copied* is refused. A folder the app's
  user can write may change between the check and the copy;
- each file, folder and link is created anew (``O_CREAT | O_EXCL | O_NOFOLLOW``,
  in folders opened with ``O_NOFOLLOW``) by the user that unpacks, who owns it:
  the owners an archive names are never restored, whatever the Python (3.11.2, in
  Debian 12, has no extraction filters). A mode keeps its permission bits, less
  setuid, setgid, sticky, and write for group and others; mtimes are kept;
- no more bytes are written than the check measured: a file that grew since is
  refused;
- the unpacked folder is then checked again (:func:`check_tree`): every entry
  belongs to the user that unpacked it, none can be written by group or others,
  and its links stay inside.

On failure the folder may hold part of the source; the deploy removes the whole
instance. This module imports only the standard library and :mod:`sarge.errors`.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import errno
import functools
import os
import posixpath
import re
import stat
import tarfile
import zlib

from .errors import BuildError

try:
    from lzma import LZMAError
except ImportError:  # a Python built without lzma cannot read .xz data either
    LZMAError = tarfile.TarError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: The most names a path in a source may have (``a/b/c`` has three): each level of a
#: folder being walked holds a descriptor open.
MAX_DEPTH = 128

_KEPT_BITS = 0o755  # of a member's mode: no setuid, setgid, sticky, group or other write
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
# What a broken or truncated archive raises besides TarError (gzip and bz2 raise
# OSErrors without an errno: see _extract).
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, LZMAError)


# -- the checks --------------------------------------------------------------------------------

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
    symlinks = {"/".join(_parts(m.name)): m.target for m in members if m.kind == "symlink"}
    total = 0
    for m in members:
        name = m.name
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise BuildError(f"refused: {name!r} has an absolute path")
        parts = _parts(name)
        if ".." in parts:
            raise BuildError(f"refused: {name!r} points out of the instance ('..')")
        if len(parts) > MAX_DEPTH:
            raise _too_deep(name)
        path = "/".join(parts)
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise BuildError(f"refused: {name!r} would be written through the link "
                                 f"{'/'.join(parts[:i])!r}")
        if m.kind == "special":
            raise _special(name)
        if m.kind in ("symlink", "hardlink"):
            _check_link(name, path, m.kind, m.target, symlinks)
            links.add(path)
        elif m.kind == "file":
            total += m.size
    return total


def _check_link(name, path, kind, target, symlinks) -> None:
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


def _parts(name: str) -> list:
    return [p for p in name.split("/") if p not in ("", ".")]


def _special(name) -> BuildError:
    return BuildError(f"refused: {name!r} is a device node, FIFO or socket")


def _too_deep(name) -> BuildError:
    return BuildError(f"refused: {name!r} is nested more than {MAX_DEPTH} levels deep")


def _check_space(target, needed) -> None:
    st = os.statvfs(target)
    free = st.f_bavail * st.f_frsize
    if needed > free:
        raise BuildError(f"refused: the source needs {needed} bytes and {target} has {free} free")


def check_tree(folder: str) -> None:
    """Refuse (raise :class:`BuildError`, naming the file) an unpacked ``folder`` with an
    entry that is not the unpacking user's, that group or others can write, that is
    setuid, setgid or sticky, or that :func:`check_members` refuses."""
    uid = os.geteuid()
    members = []
    try:
        with _opened(folder) as fd:
            for path, st, parent, name in _walk(fd):
                where = os.path.join(folder, path)
                if st.st_uid != uid:
                    raise BuildError(f"refused: {where} belongs to uid {st.st_uid}, not to "
                                     f"uid {uid} that unpacked it")
                mode = stat.S_IMODE(st.st_mode)
                if not stat.S_ISLNK(st.st_mode) and mode & ~_KEPT_BITS:
                    raise BuildError(f"refused: {where} has mode {mode:04o}: group or others "
                                     "can write it, or it is setuid, setgid or sticky")
                members.append(_member(path, st, parent, name))
    except OSError as exc:
        raise BuildError(f"cannot check {folder}: {_why(exc)}") from exc
    check_members(members)


# -- sources -----------------------------------------------------------------------------------

_MAGIC = ((b"\x1f\x8b", "gzip-compressed data"), (b"BZh", "bzip2-compressed data"),
          (b"\xfd7zXZ\x00", "xz-compressed data"), (b"PK\x03\x04", "a zip archive"),
          (b"\x7fELF", "an ELF executable"))


def source_kind(source: str) -> str:
    """'dir' or 'tar' for a usable source; raise :class:`BuildError` otherwise, in one
    line that says what the file is and what sarge accepts."""
    if os.path.isdir(source):
        return "dir"
    if not os.path.isfile(source):
        raise BuildError(f"no such source: {source}")
    if not source.endswith(ARCHIVE_SUFFIXES):
        raise BuildError(f"{source} is {_what_is(source)}, neither a directory nor a .tar, "
                         ".tar.gz or .tgz archive: sarge deploys only those")
    try:
        with tarfile.open(source):  # reads the first member's header, no more
            pass
    except (*_UNREADABLE, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise BuildError(f"cannot read {source}: {exc.strerror}") from exc
        raise BuildError(f"{source} is {_what_is(source)}, not a readable tar archive: sarge "
                         "deploys a directory or a .tar, .tar.gz or .tgz archive") from exc
    return "tar"


def _what_is(path) -> str:
    """A few words on what the file at ``path`` holds, for an error message."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        return f"a file sarge cannot read ({exc.strerror})"
    if not head:
        return "an empty file"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[257:262] == b"ustar":
        return "a tar archive"
    if b"\0" in head:
        return "binary data"
    try:  # final=False: a character cut in two at the end of what was read is still text
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "binary data"
    return "a text file"


# -- unpacking ---------------------------------------------------------------------------------

def unpack(source: str, target: str, *, after_check=None) -> None:
    """Copy or extract ``source`` into the existing folder ``target``, safely (see above).

    ``after_check()``, when given, runs once the source is checked and before anything
    is written: the tests change the source there, as a hostile app user could.
    """
    if source_kind(source) == "dir":
        try:
            _copy(source, target, after_check)
        except OSError as exc:
            raise BuildError(f"cannot copy {source}: {_why(exc)}") from exc
    else:
        _extract(source, target, after_check)
    check_tree(target)


def _copy(source, target, after_check) -> None:
    with _opened(source) as src, _opened(target) as root:
        members = _dir_members(src)
        budget = check_members(members)
        _check_space(target, budget)
        if after_check is not None:
            after_check()
        links = {m.name: m.target for m in members if m.kind == "symlink"}
        with _Writer(root, budget) as writer:
            _FolderCopy(source, writer, links).folder(src)
            writer.finish()


class _FolderCopy:
    """Copies the folder open at a descriptor, entry by entry, checking each as it is
    copied: the check before saw the folder as it was then. ``links`` are the links as
    the check saw them ({path: target}), updated as they are copied."""

    def __init__(self, source: str, writer, links: dict):
        self.source = source
        self.writer = writer
        self.links = links

    def folder(self, fd: int, prefix: str = "") -> None:
        for name in sorted(os.listdir(fd)):
            path = prefix + name
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
                raise _special(path)
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
        _check_link(path, path, "symlink", target, self.links)
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
            raise _special(path) from None
        raise


def _extract(source, target, after_check) -> None:
    try:
        with tarfile.open(source) as archive, _opened(target) as root:
            infos = archive.getmembers()
            budget = check_members(_tar_member(info) for info in infos)
            _check_space(target, budget)
            if after_check is not None:
                after_check()
            with _Writer(root, budget) as writer:
                for info in infos:
                    _extract_member(archive, info, writer, source)
                writer.finish()
    except _UNREADABLE as exc:
        raise BuildError(f"{source} is not a readable tar archive ({_why(exc)})") from exc
    except OSError as exc:
        if not exc.errno:  # gzip's and bz2's errors for broken data
            raise BuildError(f"{source} is not a readable tar archive ({_why(exc)})") from exc
        raise BuildError(f"cannot unpack {source}: {_why(exc)}") from exc


def _extract_member(archive, info, writer, source) -> None:
    """Write one checked member of ``archive``; its owner is never restored."""
    try:
        if info.isdir():
            writer.folder(info.name, info.mode, _mtime_ns(info))
        elif info.issym():
            writer.symlink(info.name, info.linkname)
        elif info.islnk():
            writer.hardlink(info.name, info.linkname)
        else:
            with archive.extractfile(info) as data:
                writer.file(info.name, data.read, info.mode, _mtime_ns(info))
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


def _why(exc) -> str:
    """An error's message on one line (tarfile's for an unknown format has five)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, OSError) and exc.filename:
        text += f": {exc.filename}"
    return " ".join(text.split())


# -- folders by descriptor ---------------------------------------------------------------------

@contextlib.contextmanager
def _opened(path: str):
    """The folder at ``path`` (its own path is followed, as the operator gave it), open."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _walk(fd: int, prefix: str = ""):
    """(path, lstat, folder descriptor, name) of every entry under the folder open at
    ``fd``, a folder before what it holds; links are not followed."""
    for name in sorted(os.listdir(fd)):
        path = prefix + name
        if path.count("/") >= MAX_DEPTH:
            raise _too_deep(path)
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        yield path, st, fd, name
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _FOLDER, dir_fd=fd)
            try:
                yield from _walk(sub, path + "/")
            finally:
                os.close(sub)


def _member(path, st, fd, name) -> Member:
    if stat.S_ISLNK(st.st_mode):
        return Member(path, "symlink", 0, os.readlink(name, dir_fd=fd))
    if stat.S_ISDIR(st.st_mode):
        return Member(path, "dir")
    if stat.S_ISREG(st.st_mode):
        return Member(path, "file", st.st_size)
    return Member(path, "special")


def _dir_members(fd: int) -> list:
    """The members of the folder open at ``fd``, as the checks see them."""
    return [_member(*entry) for entry in _walk(fd)]


class _Writer:
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
        parts = _parts(path)
        if not parts:
            return  # "." is the instance folder itself: it keeps the mode sarge gave it
        if len(parts) > MAX_DEPTH:
            raise _too_deep(path)
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
            os.fchmod(out, mode & _KEPT_BITS)
            _set_mtime(out, mtime_ns)
        finally:
            os.close(out)

    def symlink(self, path: str, target: str) -> None:
        parent, name = self._place(path)
        self._replacing(lambda: os.symlink(target, name, dir_fd=parent), parent, name)

    def hardlink(self, path: str, target: str) -> None:
        """Link ``path`` to the member ``target`` written before, reached without
        following any link (one could lead out from where it is)."""
        parts = _parts(posixpath.normpath(target))
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
                os.fchmod(fd, mode & _KEPT_BITS)
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
        parts = _parts(path)
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
                    sub = os.open(part, _FOLDER, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o700, dir_fd=fd)
                    sub = os.open(part, _FOLDER, dir_fd=fd)
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
