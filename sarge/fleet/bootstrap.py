"""``sarge-fleet bootstrap``: sarge onto every host, the same version everywhere.

The wheel of the local sarge (built from its source tree) and ``deploy/bootstrap-sarge.py``
go to a temporary folder of each host over SFTP; the script makes the virtualenv,
installs the wheel (its dependencies from PyPI, ``--index``, or the wheels of
``--find-links`` on the host), and makes the home. Where systemd runs and the SSH user
is root, the home's unit is installed and enabled (it starts supervisord); elsewhere
supervisord is started now and the crontab line that starts it at boot is reported.
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import shutil
import subprocess
import sys
import tempfile

from ..errors import FleetError
from .parallel import each
from .remote import Remote

SCRIPT = "bootstrap-sarge.py"
#: deploy/bootstrap-sarge.py as the package ships it (in the source tree: a link to it).
PACKAGED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap-sarge")


def source_tree() -> str | None:
    """The folder of sarge's own source (setup.py, deploy/), when sarge runs from one."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = all(os.path.exists(os.path.join(top, *p)) for p in
                (("setup.py",), ("deploy", SCRIPT), ("sarge", "__init__.py")))
    return top if found else None


def build_wheel(tree: str, folder: str) -> str:
    """The wheel of the sarge in ``tree``, built in ``folder`` from a clean copy of it
    (setuptools' build/ folder would keep files the tree no longer has)."""
    copy = os.path.join(folder, "src")
    shutil.copytree(tree, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".cache", "build", "docs", "tests", "bench", "*.egg-info",
        "__pycache__", "demo-home"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                             "--no-build-isolation", "--disable-pip-version-check", "-w",
                             folder, copy], capture_output=True, text=True)
    wheels = [n for n in os.listdir(folder) if n.endswith(".whl")]
    if result.returncode != 0 or not wheels:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise FleetError(f"cannot build sarge's wheel from {tree}: "
                         f"{lines[-1] if lines else 'pip wheel failed'} (pip install wheel, "
                         "or give --from a wheel)")
    return os.path.join(folder, wheels[0])


def bootstrap_hosts(fleet, hosts, *, wheel=None, script=None, find_links=None, index=None,
                    user="", python="python3", systemd=True, remote=Remote,
                    line=None) -> list:
    """Bootstrap each host at once: a list of (host, its report or None, error)."""
    tree = source_tree()
    script = script or PACKAGED
    if not os.path.isfile(script):
        raise FleetError(f"no bootstrap script {script}: give --script PATH (the "
                         "repository's deploy/bootstrap-sarge.py)")
    with tempfile.TemporaryDirectory(prefix="sarge-fleet-wheel-") as folder:
        if wheel is None:
            if tree is None:
                raise FleetError("sarge does not run from its source tree: give --from "
                                 "the wheel to install")
            wheel = build_wheel(tree, folder)
            if line:
                line(None, f"built {os.path.basename(wheel)}")
        options = [*(["--find-links", find_links] if find_links else []),
                   *(["--index", index] if index else []), *(["--user", user] if user else [])]

        def one(host):
            r = remote(host, fleet.ssh)
            try:
                return _bootstrap(r, wheel, script, options, python, systemd,
                                  (lambda text: line(host.name, text)) if line else None)
            finally:
                r.close()

        return each(hosts, one)


def _bootstrap(r, wheel, script, options, python, systemd, line) -> dict:
    made = r.run("mktemp -d /tmp/sarge-bootstrap.XXXXXX")
    if not made.ok:
        raise FleetError(f"{r.host.name}: cannot make a temporary folder: {made.reason()}")
    tmp = made.stdout.strip()
    try:
        remote_wheel = posixpath.join(tmp, os.path.basename(wheel))
        r.put(wheel, remote_wheel, 0o600)
        r.put(script, posixpath.join(tmp, SCRIPT), 0o700)
        unit = systemd and r.run("test -d /run/systemd/system && test \"$(id -u)\" = 0").ok
        answer = r.run(shlex.join([python, posixpath.join(tmp, SCRIPT), r.host.home,
                                   "--from", remote_wheel, "--json", *options,
                                   *([] if unit else ["--start"])]), line=line)
    finally:
        r.run(shlex.join(["rm", "-rf", "--", tmp]))
    if not answer.ok:
        raise FleetError(f"{r.host.name}: bootstrap failed: "
                         f"{answer.reason().removeprefix('bootstrap-sarge: ')}")
    report = json.loads(answer.stdout.strip().splitlines()[-1])
    if unit:
        name = report["unit_name"]
        path = f"/etc/systemd/system/{name}.service"
        with tempfile.NamedTemporaryFile("w", suffix=".service") as f:
            f.write(report["unit"])
            f.flush()
            r.put(f.name, path, 0o644)
        enabled = r.run(f"systemctl daemon-reload && systemctl enable --now {shlex.quote(name)}")
        if not enabled.ok:
            raise FleetError(f"{r.host.name}: systemctl enable --now {name} failed: "
                             f"{enabled.reason()}")
        report["boot"] = f"systemd unit {name} enabled and started"
    else:
        report["boot"] = (f"supervisord {'started' if report['started'] else 'runs'}; at "
                          f"boot: no systemd unit (no systemd, or not root): crontab line "
                          f"{report['crontab']!r}")
    return report
