"""The wheelhouse of ``sarge package --wheels``: a wheel of every requirement of the
app and of their dependencies (``pip wheel``: a wheel an index has is copied, an sdist
is built into one), for a server without internet; a deploy of the archive installs
from it alone (``--no-index --find-links``, :func:`install_args`). The wheels are for
the Python and platform that package: a server must run the same (``--pip-arg``
passes pip's ``--platform`` and ``--python-version`` for another)."""

from __future__ import annotations

import os
import subprocess
import sys

from ..errors import PackageError

#: The wheelhouse's folder in the archive, and in an instance's folder.
FOLDER = "sarge-wheels"


def build(root: str, requirements: str, target: str, pip_args=(), log=None) -> list:
    """Fill the folder ``target`` with the wheels of ``requirements`` (read in ``root``,
    the source: its relative paths are the app's); return their names, sorted."""
    argv = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check",
            "--no-input", "-q", "-r", requirements, "-w", target, *pip_args]
    result = subprocess.run(argv, cwd=root, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        last = [line for line in (result.stderr or result.stdout).splitlines()
                if line.strip()][-1:] or ["no output"]
        raise PackageError(f"pip wheel could not make the wheelhouse ({last[0].strip()[:200]})"
                           "; without internet, give it a wheel folder with --pip-arg "
                           "--no-index --pip-arg --find-links=DIR")
    return sorted(n for n in os.listdir(target) if n.endswith(".whl"))


def install_args(folder: str, manifest) -> list:
    """The pip arguments that install an instance's requirements from its wheelhouse
    alone, when its archive's ``manifest`` has one (else none)."""
    if not manifest or manifest.get("wheels") != FOLDER:
        return []
    wheels = os.path.join(folder, FOLDER)
    return ["--no-index", "--find-links", wheels] if os.path.isdir(wheels) else []
