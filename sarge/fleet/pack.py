"""The source of a rollout, packed once: the same archive, and SHA-256, for every host.

A folder is packed by ``sarge package`` (the local sarge's command line): validated
first (a source that cannot deploy is refused before any host is asked), without
``.git``, what git ignores and ``.sargeignore`` names, with its manifest (each host's
deploy checks every file against it), reproducibly; with ``wheels``, a wheelhouse of
its requirements rides along, so that hosts without an index install from it. An
archive is sent as it is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

from ..errors import FleetError

ARCHIVES = (".tar", ".tar.gz", ".tgz")


@dataclasses.dataclass(frozen=True)
class Package:
    path: str
    sha256: str
    size: int
    note: str = ""

    @property
    def name(self) -> str:
        """Its name on the hosts: the digest's start, and the archive's suffix."""
        suffix = next(s for s in (".tar.gz", ".tgz", ".tar") if self.path.endswith(s))
        return f"{self.sha256[:16]}{suffix}"


def pack(source: str, folder: str, *, wheels: bool = False, strict: bool = False,
         run=subprocess.run) -> Package:
    """``source`` (a folder, or a .tar/.tar.gz/.tgz archive) as one archive, a folder's
    written into ``folder`` by ``sarge package`` (run with ``run``)."""
    source = os.path.abspath(source)
    if os.path.isfile(source) and source.endswith(ARCHIVES):
        return Package(source, _sha256(source), os.path.getsize(source), "the archive as it is")
    if not os.path.isdir(source):
        raise FleetError(f"{source} is neither a folder nor a .tar, .tar.gz or .tgz archive")
    path = os.path.join(folder, "source.tar.gz")
    result = run([sys.executable, "-m", "sarge", "package", source, "-o", path, "--json",
                  *(["--wheels"] if wheels else []), *(["--strict"] if strict else [])],
                 capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if ": error: " in line or line.startswith("sarge:")]
        raise FleetError(f"{source} cannot be deployed, so no host was touched: "
                         f"{(errors or lines or ['sarge package failed'])[0]} "
                         f"(`sarge validate {source}` lists every problem)")
    report = json.loads(result.stdout)
    note = f"{report['files']} files" + (f", {len(report['wheels'])} wheels"
                                         if report["wheels"] else "") \
        + (f", git {report['revision'][:12]}" if report.get("revision") else "")
    return Package(path, report["sha256"], os.path.getsize(path), note)


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
