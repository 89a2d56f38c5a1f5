"""A reproducible tar.gz: the same members give the same bytes, whoever packs them,
wherever, whenever. Members sorted by path; every mtime the same (``SOURCE_DATE_EPOCH``
when set, else 1980-01-01, the oldest a zip file can hold: a build that zips the source
works); owner and group 0 with no names; modes 0755 (folders, executables) or 0644;
the gzip header without a name or a time; PAX format (long and non-ASCII names)."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import os
import tarfile
import tempfile

from ..errors import PackageError

#: 1980-01-01T00:00:00Z.
DEFAULT_MTIME = 315532800


@dataclasses.dataclass(frozen=True)
class Member:
    """One member: ``path``, ``kind`` (file, dir, symlink), ``mode``; a file's ``data``
    (bytes) or ``source`` (a path to read it from); a link's ``target``."""

    path: str
    kind: str
    mode: int = 0o644
    data: bytes | None = None
    source: str | None = None
    target: str = ""


def mtime(environ=os.environ) -> int:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) when it is a whole number, else
    :data:`DEFAULT_MTIME`."""
    value = environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_MTIME


def write(members, output: str, when: int | None = None) -> str:
    """Write ``members`` as a tar.gz at ``output`` (atomically: a temporary file beside
    it, renamed); return its sha256."""
    when = mtime() if when is None else when
    folder = os.path.dirname(os.path.abspath(output))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".sarge-package-", dir=folder)
    except OSError as exc:
        raise PackageError(f"cannot write in {folder}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as raw:
            _write(sorted(members, key=lambda m: m.path), raw, when)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, output)
    except OSError as exc:
        raise PackageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return sha256(output)


def _write(members, raw, when: int) -> None:
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = when, 0, 0, "", ""
            info.mode = 0o755 if member.kind == "dir" or member.mode & 0o100 else 0o644
            if member.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif member.kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, member.target, 0o777
                tar.addfile(info)
            else:
                data = member.data
                if data is None:
                    fd = os.open(member.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    with os.fdopen(fd, "rb") as f:
                        data = f.read()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
