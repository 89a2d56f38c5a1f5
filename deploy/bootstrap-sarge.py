#!/usr/bin/env python3
"""Bootstrap sarge on a fresh host: a virtualenv, sarge installed in it, the home made.

    python3 bootstrap-sarge.py HOME [--user NAME] [--from WHEEL_OR_DIR] [--index URL]
                               [--find-links DIR] [--venv PATH] [--start] [--json]

or, straight from the repository:

    python3 <(curl -fsSL https://SARGE-REPO/raw/main/deploy/bootstrap-sarge.py) HOME

1. a virtualenv (``--venv``, default ``HOME.venv``: beside the home, which ``init``
   wants empty) with Python's own ``venv``;
2. sarge installed in it with pip: ``sarge-deploy`` from PyPI (or ``--index URL``), or
   ``--from`` a wheel or a source folder; ``--find-links DIR`` installs from the wheels
   in DIR only (no network: a host without internet gets them with the upload);
3. ``sarge HOME init`` (with ``--user NAME``: who runs the apps when supervisord runs
   as root);
4. the lines that start the home's supervisord at boot, on stdout: a systemd unit
   (deploy/sarge@.service, for this home) and the crontab line for hosts without
   systemd. ``--start`` starts the supervisord now, unless it runs.

Safe to run twice: an existing virtualenv and home are reused, nothing is lost. What
stops it is one line on stderr saying what is missing (``python3-venv``, write
access) and exit status 1 (2 for bad arguments). Standard library only, Python 3.10+.
"""

import argparse
import json
import os
import subprocess
import sys

PROG = "bootstrap-sarge"

# The [Service] of deploy/sarge@.service, for one home at any path (tests compare them).
UNIT = """\
# systemd unit for the sarge home {home} (made by bootstrap-sarge.py from
# deploy/sarge@.service): cp it to /etc/systemd/system/{name}.service, then
#   systemctl daemon-reload && systemctl enable --now {name}
[Unit]
Description=sarge home {home} (its supervisord, instances and nginx)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
ExecStart={home}/bin/supervisord --nodaemon
ExecStop={home}/bin/supervisorctl shutdown
ExecReload=/bin/kill -USR2 $MAINPID
Restart=on-failure
# supervisord stops the instances gracefully (stopwaitsecs) before it exits.
TimeoutStopSec=90
KillMode=mixed

[Install]
WantedBy=multi-user.target
"""


class Refused(Exception):
    """What stops the bootstrap: its message is the one line the operator reads."""


def note(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def check_python():
    if sys.version_info < (3, 10):
        raise Refused(f"sarge needs Python 3.10 or newer; this is "
                      f"{'.'.join(map(str, sys.version_info[:3]))} ({sys.executable}): "
                      "run it with a newer python3")
    try:
        import ensurepip  # noqa: F401 - Debian's python3 has it only with python3-venv
        import venv  # noqa: F401
    except ImportError:
        raise Refused("python3-venv is missing (Python's venv and ensurepip): "
                      "apt-get install python3-venv as root, then run this again") from None


def check_writable(path):
    """``path`` exists as a folder we can write in, or can be made: its nearest existing
    parent is a folder we can write in."""
    probe = os.path.abspath(path)
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise Refused(f"cannot make {path}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise Refused(f"cannot write in {probe} (for {path}) as {user_name()}: run this "
                      "as a user who can (sudo), or choose a path of your own")


def user_name():
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def run(argv, what):
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if result.returncode != 0:
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        lines = [line for line in lines if line.startswith("Error:")] or lines  # supervisord's
        raise Refused(f"{what} failed: {lines[-1] if lines else 'no output'} "
                      f"(exit status {result.returncode}; the command: {' '.join(argv)})")
    return result.stdout


def make_venv(path):
    python = os.path.join(path, "bin", "python")
    if os.path.exists(python):
        try:
            subprocess.run([python, "-c", "import pip"], check=True, capture_output=True)
            note(f"virtualenv {path}: there already")
            return python
        except (OSError, subprocess.CalledProcessError):
            raise Refused(f"{path} exists but its Python does not run pip: remove it (or "
                          "choose --venv), then run this again") from None
    if os.path.lexists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise Refused(f"{path} exists and is not a virtualenv: choose --venv, or remove it")
    note(f"virtualenv {path}: making it")
    run([sys.executable, "-m", "venv", path], "making the virtualenv")
    return python


def install(python, source, index, find_links):
    spec = os.path.abspath(source) if source else "sarge-deploy"
    if source and not os.path.exists(source):
        raise Refused(f"--from {source}: no such wheel or folder")
    argv = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--upgrade"]
    if find_links:
        argv += ["--find-links", find_links] + ([] if index else ["--no-index"])
    if index:
        argv += ["--index-url", index]
    note(f"installing {spec}")
    run(argv + [spec], f"pip install {spec}")
    return run([python, "-c", "from importlib.metadata import version; "
                "print(version('sarge-deploy'))"], "reading sarge's version").strip()


def supervisord_running(home):
    try:
        with open(os.path.join(home, "var", "run", "supervisord.pid")) as f:
            os.kill(int(f.read().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("home", metavar="HOME", help="the home folder to make (absolute)")
    parser.add_argument("--user", default="", metavar="NAME",
                        help="who runs the apps when supervisord runs as root (init --user)")
    parser.add_argument("--from", dest="source", metavar="WHEEL_OR_DIR",
                        help="install sarge from this wheel or source folder, not PyPI")
    parser.add_argument("--index", metavar="URL", help="the package index (pip --index-url)")
    parser.add_argument("--find-links", metavar="DIR",
                        help="install from the wheels in DIR (and no index, unless --index)")
    parser.add_argument("--venv", metavar="PATH", help="the virtualenv [default: HOME.venv]")
    parser.add_argument("--start", action="store_true",
                        help="start the home's supervisord now, unless it runs")
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    args = parser.parse_args(argv)
    home = os.path.abspath(args.home).rstrip("/")
    venv_path = os.path.abspath(args.venv or home + ".venv")
    try:
        check_python()
        check_writable(venv_path)
        check_writable(home)
        python = make_venv(venv_path)
        version = install(python, args.source, args.index, args.find_links)
        sarge = os.path.join(venv_path, "bin", "sarge")
        run([sarge, home, "init"] + (["--user", args.user] if args.user else []),
            f"sarge {home} init")
        note(f"sarge {version} in {venv_path}; home {home} ready")
        started = False
        if args.start and not supervisord_running(home):
            run([os.path.join(home, "bin", "supervisord")], "starting supervisord")
            started = True
    except Refused as exc:
        note(str(exc))
        return 1
    name = "sarge-" + (os.path.basename(home) or "home")
    unit = UNIT.format(home=home, user=user_name(), name=name)
    crontab = f"@reboot {home}/bin/supervisord"
    if args.json:
        print(json.dumps({"home": home, "venv": venv_path, "sarge": version, "unit": unit,
                          "unit_name": name, "crontab": crontab, "started": started}))
        return 0
    print(f"# At boot, with systemd: /etc/systemd/system/{name}.service\n{unit}")
    print(f"# Without systemd, in the crontab of {user_name()} (crontab -e):\n{crontab}")
    if not started:
        print(f"# Now: {home}/bin/supervisord (or: systemctl enable --now {name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
