"""Packaging and validating an app before it reaches a server (``sarge validate``,
``sarge package``; no home needed), and the check a deploy makes of a packaged archive.

- :mod:`.validate`: every problem of a source at once, each a :class:`Finding` (its
  file, line, message and severity), from :mod:`.checks` (the Procfile, ``$PORT``,
  ``runtime.txt``, files that should not ship), :mod:`.requirements` (PEP 508, pins)
  and :mod:`.abspaths` (absolute paths in settings); :mod:`.deep` (``--deep``): the
  entry point imported and the build and release steps run in a throwaway virtualenv;
- :mod:`.packager`: the archive, reproducible (:mod:`.archive`), less what
  ``.sargeignore`` and git ignore (:mod:`.selection`), with its manifest
  (:mod:`.manifest`, ``sarge-manifest.json``) and optionally a wheelhouse
  (:mod:`.wheels`);
- :func:`.manifest.verify`: what a deploy of such an archive checks after unpacking it,
  before anything of it runs.

:mod:`.source` reads a source, a folder where it is or an archive through sarge's safe
unpacker. Nothing here needs a home, prints or exits.
"""

from __future__ import annotations

from .findings import Finding, deployable
from .manifest import verify
from .packager import package
from .validate import validate

__all__ = ["Finding", "deployable", "package", "validate", "verify"]
