"""The source of a rollout, packed once: the same archive, and SHA-256, for every host."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tarfile

from ..errors import FleetError

ARCHIVES = (".tar", ".tar.gz", ".tgz")


@dataclasses.dataclass(frozen=True)
class Package:
    path: str
    sha256: str
    size: int

    @property
    def name(self) -> str:
        """Its name on the hosts: the digest's start, and the archive's suffix."""
        suffix = next(s for s in (".tar.gz", ".tgz", ".tar") if self.path.endswith(s))
        return f"{self.sha256[:16]}{suffix}"


def pack(source: str, folder: str) -> Package:
    """``source`` (a folder, or a .tar/.tar.gz/.tgz archive) as one archive: an archive as
    it is; a folder packed into ``folder`` (a .tar.gz of its content, members sorted,
    owners left out)."""
    source = os.path.abspath(source)
    if os.path.isdir(source):
        path = os.path.join(folder, "source.tar.gz")
        try:
            with tarfile.open(path, "w:gz") as tar:
                for name in sorted(os.listdir(source)):
                    tar.add(os.path.join(source, name), arcname=name, filter=_anonymous)
        except OSError as exc:
            raise FleetError(f"cannot pack {source}: {exc.strerror or exc}"
                             + (f" ({exc.filename})" if exc.filename else "")) from exc
    elif os.path.isfile(source) and source.endswith(ARCHIVES):
        path = source
    else:
        raise FleetError(f"{source} is neither a folder nor a .tar, .tar.gz or .tgz archive")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return Package(path, digest.hexdigest(), os.path.getsize(path))


def _anonymous(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
