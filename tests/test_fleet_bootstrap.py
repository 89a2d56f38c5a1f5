"""deploy/bootstrap-sarge.py on its own, and ``sarge-fleet bootstrap`` over a real sshd
onto a host with no sarge: the wheel of this work tree, its dependencies from the
wheels scripts/setup fetched (.cache/fleet-wheels): no network."""

import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from sarge.home import Home

from .conftest import kill_home, port_base, supervisord_pid
from .sshd import FakeHost, keygen, needs_sshd, write_fleet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "deploy", "bootstrap-sarge.py")
WHEELHOUSE = os.path.join(ROOT, ".cache", "fleet-wheels")
FLEET = [sys.executable, "-m", "sarge.fleet"]


def needs_wheelhouse():
    if not os.path.isfile(os.path.join(WHEELHOUSE, ".setup.py")):
        pytest.skip("no .cache/fleet-wheels: run scripts/setup")


class Fresh:
    """A fake host with no sarge, bootstrapped once by ``sarge-fleet bootstrap --json``."""

    def __init__(self, tmp_path):
        key = tmp_path / "client_key"
        self.home = tmp_path / "fresh" / "home"
        self.host = FakeHost(tmp_path / "ssh", "fresh", port_base() + 970, self.home,
                             keygen(key)).start()
        self.path = write_fleet(tmp_path, [self.host], key)
        self.argv = [*FLEET, "-f", self.path, "bootstrap", "--find-links", WHEELHOUSE,
                     "--no-systemd"]
        self.result = subprocess.run([*self.argv, "--json"], capture_output=True, text=True,
                                     timeout=170)

    def close(self):
        self.host.stop()
        if os.path.isdir(self.home):
            kill_home(Home(self.home))


#: The tests of one bootstrapped host: on one worker, so that the host is bootstrapped once
#: (xdist hands a module's tests to any worker, and each would make its own module
#: fixture), and no other bootstrap as root runs while the second one's leftovers are looked
#: for (seen: the other worker's first bootstrap's temporary folder, counted as left behind).
one_host = pytest.mark.xdist_group("bootstrap_fresh")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    needs_sshd()
    needs_wheelhouse()
    f = Fresh(tmp_path_factory.mktemp("b"))  # short: the home's supervisord socket
    try:
        yield f
    finally:
        f.close()


@one_host
@pytest.mark.heavy
def test_sarge_fleet_bootstraps_a_host_with_no_sarge(fresh):
    result, home = fresh.result, fresh.home
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["hosts"][0]
    assert report["error"] is None and report["sarge"] == "0.1.0"
    assert report["crontab"] == f"@reboot {home}/bin/supervisord"
    assert "crontab line" in report["boot"] and report["started"] is True
    assert "fresh: bootstrap-sarge: installing " in result.stderr  # its own lines
    assert Home(home).is_initialized()
    assert os.readlink(home.parent / "home.venv" / "bin" / "python")  # the virtualenv
    assert supervisord_pid(Home(home)) is not None
    result = subprocess.run([*FLEET, "-f", fresh.path, "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hosts"][0]["app"] is None


@one_host
def test_a_second_bootstrap_finds_everything_there_and_leaves_no_file_behind(fresh):
    assert fresh.result.returncode == 0, fresh.result.stderr
    pid = supervisord_pid(Home(fresh.home))
    result = subprocess.run(fresh.argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "virtualenv" in result.stderr and "there already" in result.stderr
    assert "supervisord runs" in result.stdout and supervisord_pid(Home(fresh.home)) == pid
    assert left_behind(fresh.host.started_at) == []


def left_behind(since) -> list:
    """The bootstrap's temporary folders in /tmp made since ``since`` by this user (the
    bootstrap as a user of its own may be running on another worker, with its own)."""
    found = []
    for name in os.listdir("/tmp"):
        try:
            st = os.stat(os.path.join("/tmp", name))
        except FileNotFoundError:
            continue  # removed meanwhile
        if name.startswith("sarge-bootstrap.") and st.st_mtime > since \
                and st.st_uid == os.getuid():
            found.append(name)
    return found


def test_the_bootstrap_refuses_without_python3_venv(tmp_path):
    """Debian's python3 without python3-venv: its ensurepip does not import."""
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('ensurepip is disabled')\n")
    home = tmp_path / "home"
    result = subprocess.run([sys.executable, SCRIPT, str(home)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(shadow.parent)})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("bootstrap-sarge: python3-venv is missing (Python's venv and "
                             "ensurepip): apt-get install python3-venv as root, then run "
                             "this again\n")
    assert sorted(os.listdir(tmp_path)) == ["shadow"]  # nothing made


def test_the_bootstrap_refuses_a_home_it_cannot_write(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run([sys.executable, SCRIPT, str(blocker / "home")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == (f"bootstrap-sarge: cannot make {blocker}/home.venv: {blocker} "
                             "is not a folder\n")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return
    # a user who may not write where the home would go (the test's folders are root's)
    folder = tempfile.mkdtemp()
    try:
        os.chmod(folder, 0o755)
        shutil.copy(SCRIPT, folder)
        result = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3",
                                 os.path.join(folder, "bootstrap-sarge.py"),
                                 os.path.join(folder, "home")], capture_output=True,
                                text=True, cwd=folder)
        assert result.returncode == 1, result.stderr
        assert result.stderr == (f"bootstrap-sarge: cannot write in {folder} (for "
                                 f"{folder}/home.venv) as nobody: run this as a user who can "
                                 "(sudo), or choose a path of your own\n")
        assert os.listdir(folder) == ["bootstrap-sarge.py"]
    finally:
        shutil.rmtree(folder)


def test_the_bootstraps_unit_is_deploy_sarge_at_service_for_its_home():
    """Its boot lines reuse deploy/sarge@.service: the same unit, for one home."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bootstrap_sarge", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def sections(text):
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.optionxform = str
        parser.read_string(text)
        return {name: dict(parser[name]) for name in parser.sections()}

    with open(os.path.join(ROOT, "deploy", "sarge@.service")) as f:
        template = f.read().replace("%i", "shop")
    assert sections(script.UNIT.format(home="/srv/shop", user="shop", name="sarge-shop")) \
        == sections(template)


def test_the_wheel_ships_the_bootstrap_script(tmp_path):
    """sarge-fleet bootstrap uploads the package's copy: the wheel holds deploy's file."""
    import zipfile

    from sarge.fleet.bootstrap import build_wheel, source_tree

    wheel = build_wheel(source_tree(), str(tmp_path))
    with zipfile.ZipFile(wheel) as z, open(SCRIPT, "rb") as f:
        assert z.read("sarge/fleet/bootstrap-sarge") == f.read()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"),
                    reason="a user of its own needs root (and useradd)")
@pytest.mark.heavy
def test_bootstrap_over_ssh_as_a_user_of_its_own():
    """The host's SSH user is a plain user with a shell: sarge goes into a virtualenv of
    the host's /usr/bin/python3, the home is that user's, its supervisord runs as it."""
    import psutil

    needs_sshd()
    needs_wheelhouse()
    name = f"sarge-f{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:]}-{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                    "/nonexistent", "--shell", "/bin/sh", name], check=True,
                   capture_output=True)
    # no password, but not locked ("!"): sshd without PAM refuses a locked account's keys
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    top = tempfile.mkdtemp(prefix="sarge-f")
    home = os.path.join(top, "srv", "home")
    host = None
    try:
        os.chmod(top, 0o755)
        os.mkdir(os.path.join(top, "srv"))
        shutil.chown(os.path.join(top, "srv"), name, name)
        key = os.path.join(top, "client_key")  # root's: sarge-fleet runs as root here
        host = FakeHost(os.path.join(top, "ssh"), "plain", port_base() + 972, home,
                        keygen(key))
        for path in (host.folder, os.path.join(host.folder, "authorized_keys"),
                     os.path.join(host.folder, "logged-command")):
            os.chmod(path, 0o755)  # sshd reads authorized_keys as the user
        host.start()
        path = write_fleet(top, [host], key, user=name)
        result = subprocess.run([*FLEET, "-f", path, "bootstrap", "--find-links", WHEELHOUSE,
                                 "--no-systemd", "--json"], capture_output=True, text=True,
                                timeout=170)
        assert result.returncode == 0, result.stderr + result.stdout
        report = json.loads(result.stdout)["hosts"][0]
        assert report["error"] is None and report["started"] is True
        assert f"User={name}\n" in report["unit"]
        assert os.stat(home).st_uid == os.stat(os.path.join(top, "srv")).st_uid != 0
        pid = supervisord_pid(Home(home))
        assert psutil.Process(pid).username() == name
        assert os.readlink(os.path.join(home + ".venv", "bin", "python")).endswith("python3")
    finally:
        if host is not None:
            host.stop()
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        time.sleep(0.5)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
