"""What a source is: a folder or a tar archive sarge can read, or, in one line, what
else it is (:func:`source_kind`)."""

from __future__ import annotations

import codecs
import os
import tarfile
import zlib

from ..errors import BuildError

try:
    from lzma import LZMAError
except ImportError:  # a Python built without lzma cannot read .xz data either
    LZMAError = tarfile.TarError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: What a broken or truncated archive raises besides TarError (gzip and bz2 raise
#: OSErrors without an errno: see :func:`sarge.unpack.archive.extract`).
UNREADABLE = (tarfile.TarError, EOFError, zlib.error, LZMAError)

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
    except (*UNREADABLE, OSError) as exc:
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
