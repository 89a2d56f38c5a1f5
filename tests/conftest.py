"""Fixtures: real homes in temporary folders, with a real supervisord where asked."""

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

import psutil
import pytest

from sarge import users
from sarge.home import Home

HERE = os.path.dirname(os.path.abspath(__file__))
ENVSERVER = os.path.join(HERE, "apps", "envserver.py")

# Quick process settings for tests: a crash loop ends in FATAL within seconds.
TEST_SETTINGS = {"startretries = 3": "startretries = 1", "stopwaitsecs = 40": "stopwaitsecs = 5"}


def edit_settings(h, replacements):
    with open(h.settings_path) as f:
        text = f.read()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    with open(h.settings_path, "w") as f:
        f.write(text)
    h._settings = None


def port_base():
    """The first port of this test worker's range: parallel workers never share ports.
    ``SARGE_TEST_PORT_BASE`` (default 20000) moves all of them, so that two runs of the
    suite on one machine (two work trees) do not collide either."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(os.environ.get("SARGE_TEST_PORT_BASE", "20000")) + 1000 * int(worker[2:] or 0)


def make_home(path, offset=0, user=None):
    """Initialize a home at ``path`` with quick test settings and this worker's ports.

    The tests run as root in CI, in homes root owns: their apps and nginx's workers
    run as root, which sarge does only when told (``user``: the [users] default to
    name instead; nginx's workers then run as nobody, sarge's default).
    """
    h = Home(path)
    h.init()
    base = port_base() + offset
    frontend = ""
    if user is None:
        user = frontend = "root" if os.geteuid() == 0 else ""
    edit_settings(h, {**TEST_SETTINGS, "first = 5000": f"first = {base}",
                      "last = 5999": f"last = {base + 199}",
                      'default = ""': f'default = "{user}"',
                      'frontend = ""': f'frontend = "{frontend}"'})
    return h


@pytest.fixture
def home(tmp_path_factory):
    """An initialized home (supervisord not started), in a short temporary path."""
    return make_home(tmp_path_factory.mktemp("h") / "home")


def supervisord_pid(h):
    try:
        with open(h.pidfile) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def start_supervisord(h):
    subprocess.run([os.path.join(h.path, "bin", "supervisord")], check=True)
    deadline = time.monotonic() + 10
    while not h.supervisor.is_running():
        assert time.monotonic() < deadline, "supervisord did not come up"
        time.sleep(0.05)


def stop_supervisord(h, sig=signal.SIGTERM):
    """Stop the home's supervisord (its children with it, on SIGTERM) and wait until gone."""
    pid = None
    deadline = time.monotonic() + 10
    while pid is None and time.monotonic() < deadline:
        pid = supervisord_pid(h)  # written just after it daemonizes
        if pid is None:
            time.sleep(0.05)
    if pid is None:
        return
    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
        proc.wait(20)
    except psutil.NoSuchProcess:
        pass


def kill_home(h):
    """Kill the home's supervisord and every process under it, at once (test teardown:
    a graceful shutdown takes supervisord two seconds of its one-second poll loop)."""
    pid = supervisord_pid(h)
    procs = []
    if pid is not None:
        try:
            root = psutil.Process(pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # a group leader's group: nginx's workers
        except OSError:
            pass
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


@pytest.fixture
def running(home):
    """A home whose supervisord runs; stopped (with every instance) after the test."""
    start_supervisord(home)
    yield home
    kill_home(home)


def sarge(h, *args, check=False, timeout=60, input=None):
    """Run the home's bin/sarge with ``args``; returns the CompletedProcess (text)."""
    result = subprocess.run(
        [os.path.join(h.path, "bin", "sarge"), *args],
        capture_output=True, text=True, timeout=timeout, input=input,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def new(h, app="web"):
    result = sarge(h, "new", json.dumps({"application_name": app}), check=True)
    return result.stdout.strip()


def put_server(h, instance_id, script=None, extra_args=""):
    """Write an executable ``server`` into the instance's folder."""
    if script is None:
        script = f"#!/bin/sh\nexec {sys.executable} {ENVSERVER} {extra_args}\n"
    path = os.path.join(h.instance_dir(instance_id), "server")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)
    return path


def get(port, path="/", timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_for_state(h, instance_id, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        info = h.supervisor.process(instance_id + ":web")
        state = info["statename"].lower() if info else None
        if state == wanted:
            return info
        assert time.monotonic() < deadline, f"{instance_id} is {state}, not {wanted}"
        time.sleep(0.1)


def snapshot(path):
    """Every file and folder under ``path`` with its mode, size and mtime."""
    result = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            if name.endswith(".lock") or name.startswith("supervisord.log"):
                continue  # the lock file appears on first use; supervisord logs as it likes
            st = os.lstat(p)
            result[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return result


WEBAPP = os.path.join(HERE, "apps", "webapp")


@pytest.fixture
def webapp(tmp_path):
    """A copy of tests/apps/webapp to change and deploy."""
    import shutil

    path = tmp_path / "webapp"
    shutil.copytree(WEBAPP, path)
    return path


def listen_port(offset=0):
    """A front-end port of this worker's range."""
    return port_base() + 900 + offset


def deploy(h, source, *args, check=False):
    result = sarge(h, "deploy", str(source), *args, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def front(port, path="/", method="GET", body=None, timeout=10):
    """One request through the front-end on a fresh connection: (status, text)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


# -- root only: throwaway system users ------------------------------------------------

as_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"),
                             reason="switching users needs root (and useradd)")


def _throwaway(tag):
    """A system user with no login and no home, removed after the session."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    name = f"sarge-{tag}{worker[2:]}-{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        yield users.lookup(name)
    finally:  # userdel refuses a user that still has processes
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        for _ in range(50):
            if subprocess.run(["userdel", name], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


@pytest.fixture(scope="session")
def throwaway_user():
    """An app user of its own (``sarge-tN-PID``), for the session."""
    yield from _throwaway("t")


@pytest.fixture(scope="session")
def second_user():
    """Another user (``sarge-sN-PID``): a second app's, or a local attacker."""
    yield from _throwaway("s")


def python_for(user):
    """An interpreter ``user`` can run (this one may live in root's private home)."""
    for python in (sys.executable, "/usr/bin/python3"):
        if subprocess.run(["runuser", "-u", user.name, "--", python, "-c", ""],
                          capture_output=True).returncode == 0:
            return python
    pytest.skip(f"no Python that {user.name} can run")


@pytest.fixture
def open_home():
    """A home in a folder every user can traverse (pytest's own temporary folders are
    private to root), with supervisord running as root; app user: none named yet."""
    parent = tempfile.mkdtemp(prefix="sarge-u")
    os.chmod(parent, 0o755)
    h = make_home(os.path.join(parent, "home"), user="")
    start_supervisord(h)
    yield h
    kill_home(h)
    shutil.rmtree(parent, ignore_errors=True)


def name_user(h, user, key="default"):
    edit_settings(h, {f'{key} = ""': f'{key} = "{user}"'})


def owner(path):
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)


def process_user(h, name):
    info = h.supervisor.process(name)
    return psutil.Process(info["pid"]).username()


