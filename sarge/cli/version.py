"""``sarge --version``: sarge's, supervisor's and nginx's versions, never a traceback."""

from __future__ import annotations

import os

from .output import echo

#: Where sarge looks for nginx when it is not on PATH (as the front-end does).
NGINX_FOLDERS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")


def nginx_version(search_path=None) -> str:
    """What ``nginx -v`` says (``nginx version: nginx/1.22.1``) and which nginx that is,
    or why there is no answer: one line, never an exception."""
    import shutil  # here: only --version needs them, and every command loads this module
    import subprocess

    if search_path is None:
        search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), *NGINX_FOLDERS])
    found = shutil.which("nginx", path=search_path)
    if found is None:
        return "nginx: not found"
    try:
        result = subprocess.run([found, "-v"], stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, errors="replace", timeout=5)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nginx: {found} -v failed ({getattr(exc, 'strerror', None) or exc})"
    said = (result.stderr.strip() or result.stdout.strip()).splitlines()
    if result.returncode != 0 or not said:
        return f"nginx: {found} -v failed (exit status {result.returncode})"
    return f"{said[0]} ({found})"


def version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def print_version(ctx, param, value) -> None:
    """click's callback of ``--version``."""
    if not value or ctx.resilient_parsing:
        return
    echo(f"sarge {version('sarge-deploy')}")
    echo(f"supervisor {version('supervisor')}")
    echo(nginx_version())
    ctx.exit()
