"""Fixtures: real homes in temporary folders, with a real supervisord where asked."""

import itertools
import json
import os
import pathlib
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psutil
import pytest

from sarge import users
from sarge.home import Home

HERE = os.path.dirname(os.path.abspath(__file__))
ENVSERVER = os.path.join(HERE, "apps", "envserver.py")

# Quick process settings for tests: a crash loop ends in FATAL within seconds.
# No watch window after a switch (30 s by default): the tests that watch ask for it.
TEST_SETTINGS = {"startretries = 3": "startretries = 1", "stopwaitsecs = 40": "stopwaitsecs = 5",
                 "watch = 30": "watch = 0"}


def edit_settings(h, replacements):
    """Edit the home's etc/sarge.toml: each of ``replacements``' keys must be in it.

    Commands read the file anew; a :class:`Home` object reads it once, on first use: edit
    before that, or make a new ``Home``."""
    with open(h.settings_path) as f:
        text = f.read()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    with open(h.settings_path, "w") as f:
        f.write(text)


def wait_until(predicate, timeout=10.0, message="the condition", interval=0.05, ignore=()):
    """Call ``predicate`` until it returns something true, and return that; fail after
    ``timeout`` seconds with ``message`` (a text, or a callable giving one: the state to
    show), the last value and the last error of the kinds in ``ignore`` (which
    ``predicate`` may raise meanwhile: OSError while a server comes up, say)."""
    deadline = time.monotonic() + timeout
    while True:
        error = None
        try:
            value = predicate()
        except ignore as exc:
            value, error = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"not after {timeout:g}s: {text} (last: {value!r}"
                                 + (f", {type(error).__name__}: {error}" if error else "")
                                 + ")")
        time.sleep(interval)


def port_base():
    """The first port of this test worker's range: parallel workers never share ports.
    ``SARGE_TEST_PORT_BASE`` (default 20000) moves all of them, so that two runs of the
    suite on one machine (two work trees) do not collide either."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(os.environ.get("SARGE_TEST_PORT_BASE", "20000")) + 1000 * int(worker[2:] or 0)


def pytest_configure(config):
    """Refuse a SARGE_TEST_PORT_BASE whose ranges reach the kernel's ephemeral ports: the
    tests' own clients (thousands of connections under load) take those for outgoing
    connections, and a test's listen address is then taken already (seen with 30000
    and 40000: "something on this machine already listens there")."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return
    workers = config.getoption("numprocesses", default=None) or 1
    workers = workers if isinstance(workers, int) else os.cpu_count() or 1
    base = int(os.environ.get("SARGE_TEST_PORT_BASE", "20000"))
    top = base + 1000 * max(workers, 4)
    if base <= high and top > low:
        pytest.exit(f"SARGE_TEST_PORT_BASE={base} reaches the ephemeral ports {low}-{high} "
                    f"(its ranges end at {top}): pick one below {low - 1000 * max(workers, 4)}",
                    returncode=4)


#: Of the queue of work units the workers take from, the part over which the heavy ones
#: are spread: the rest, light tests only, fills the end of a run.
HEAVY_SPREAD = 0.7


def pytest_collection_modifyitems(config, items):
    """Order the work units (an xdist group's tests, or one test) so that the heavy ones
    do not all run at once: the machine has two cores, and four workers each building
    a real app's environment made each one four to seventeen times slower than alone.

    The heavy units (a group with a test marked ``heavy``, then the tests marked
    ``heavy``) alternate with the other groups (each list largest first) over the first
    :data:`HEAVY_SPREAD` of the queue, a few light tests after each; the order within
    a group and among the light tests is kept. (pytest.ini turns off xdist's own
    reordering, which put the groups first.)"""
    units = {}
    for item in items:
        group = item.get_closest_marker("xdist_group")
        units.setdefault(group.args[0] if group else item.nodeid, []).append(item)

    def heavy(unit):
        return any(item.get_closest_marker("heavy") for item in unit)

    def grouped(unit):
        return unit[0].get_closest_marker("xdist_group") is not None

    groups = sorted((u for u in units.values() if grouped(u)), key=len, reverse=True)
    single = [u for u in units.values() if not grouped(u)]
    heavies = [u for u in groups if heavy(u)] + [u for u in single if heavy(u)]
    others = [u for u in groups if not heavy(u)]
    light = [u for u in single if not heavy(u)]
    spread = [u for pair in itertools.zip_longest(heavies, others) for u in pair if u]
    gap = int(HEAVY_SPREAD * len(light) / len(spread)) if spread else 0
    order = []
    for i, unit in enumerate(spread):
        order += [unit, *light[i * gap:(i + 1) * gap]]
    order += light[len(spread) * gap:]
    items[:] = [item for unit in order for item in unit]


def make_home(path, offset=0, user=None, supervisor=None, settings=None):
    """Initialize a home at ``path`` with quick test settings and this worker's ports
    (``offset`` moves them within the worker's range); return a new :class:`Home` on it,
    with ``supervisor`` as its supervisord client (default: the real one).

    The tests run as root in CI, in homes root owns: their apps and nginx's workers
    run as root, which sarge does only when told (``user``: the [users] default to
    name instead; nginx's workers then run as nobody, sarge's default). ``settings``:
    more replacements for etc/sarge.toml (:func:`edit_settings`).
    """
    Home(path).init()
    base = port_base() + offset
    frontend = ""
    if user is None:
        user = frontend = "root" if os.geteuid() == 0 else ""
    h = Home(path, supervisor=supervisor)
    edit_settings(h, {**TEST_SETTINGS, "first = 5000": f"first = {base}",
                      "last = 5999": f"last = {base + 199}",
                      'default = ""': f'default = "{user}"',
                      'frontend = ""': f'frontend = "{frontend}"', **(settings or {})})
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
    wait_until(h.supervisor.is_running, 10, "supervisord to come up")


def rpc(h):
    """An XML-RPC proxy to the home's supervisord, made as supervisorctl makes one: for
    calls a test makes itself (sarge's own client is what the tests test)."""
    import xmlrpc.client

    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, "unix://" + h.socket_path)
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def stop_supervisord(h, sig=signal.SIGTERM):
    """Stop the home's supervisord (its children with it, on SIGTERM) and wait until gone."""
    try:  # written just after it daemonizes
        pid = wait_until(lambda: supervisord_pid(h), 10, "supervisord's pid file")
    except AssertionError:
        return
    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return
    wait_gone([proc], 20)


def wait_gone(procs, timeout) -> list:
    """Wait until each of ``procs`` (psutil.Process) has exited, ``timeout`` seconds at
    most: those still running then. A zombie counts as exited: it holds nothing, and
    supervisord's children are not ours to reap; whoever is pid 1 reaps them (in a
    container, maybe once every two seconds: waiting for their pids to go, as
    ``psutil.wait_procs`` does, cost up to two seconds each time)."""
    from sarge.processes import alive

    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def strays(h, known=()) -> list:
    """Processes outside ``known`` that work in the home (their current folder is in it):
    the workers of a gunicorn master that a test killed, reparented to pid 1, which hold
    the instance's port until they notice (seen: the next test on the worker found its
    first port taken)."""
    top = os.path.join(os.path.realpath(h.path), "")
    known = {proc.pid for proc in known}
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid not in known and os.path.join(proc.cwd(), "").startswith(top):
                found.append(proc)
        except (psutil.Error, OSError):  # gone, not ours, or a cwd too deep (ENAMETOOLONG)
            continue
    return found


def kill_home(h):
    """Kill the home's supervisord and every process under it, at once (test teardown:
    a graceful shutdown takes supervisord two seconds of its one-second poll loop), and
    the strays that work in the home."""
    pid = supervisord_pid(h)
    procs = []
    if pid is not None:
        try:
            root = psutil.Process(pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    procs += strays(h, procs)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # a group leader's group: nginx's workers
        except OSError:
            pass
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    wait_gone(procs, 10)


@pytest.fixture
def running(home):
    """A home whose supervisord runs; stopped (with every instance) after the test."""
    start_supervisord(home)
    yield home
    kill_home(home)


#: ``SARGE_TEST_PROCESSES=1``: every :func:`sarge` call runs the home's bin/sarge.
ALWAYS_A_PROCESS = os.environ.get("SARGE_TEST_PROCESSES") == "1"


def sarge(h, *args, check=False, timeout=60, input=None, process=False):
    """``sarge HOME ARGS`` for the home ``h``: the CompletedProcess (text) of its bin/sarge.

    It runs in this process (:func:`run_main`, the code ``bin/sarge`` runs: a new
    interpreter costs each call a tenth of a second of CPU, a third of the suite's), and
    as a real process with ``process=True``, with ``input``, off the main thread (the
    streams are this process's), for ``run`` (it execs), with ``SARGE_TEST_PROCESSES=1``.
    ``timeout`` bounds a process; in this process, pytest-timeout does."""
    words = [str(a) for a in args]
    command = next((word for word in words if not word.startswith("-")), None)
    if (process or input is not None or ALWAYS_A_PROCESS or command == "run"
            or threading.current_thread() is not threading.main_thread()):
        result = subprocess.run([os.path.join(h.path, "bin", "sarge"), *words],
                                capture_output=True, text=True, timeout=timeout, input=input)
    else:
        code, out, err = run_main([h.path, *words])
        result = subprocess.CompletedProcess(
            [os.path.join(h.path, "bin", "sarge"), *words], code, out, err)
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
    """GET ``path`` on 127.0.0.1:``port``, trying again (``timeout`` seconds) while
    nothing answers: (status, text). The last OSError is raised."""
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
    """Wait until the instance's web process is in state ``wanted`` ("running"); its
    info."""
    seen = {}

    def reached():
        info = h.supervisor.process(instance_id + ":web")
        seen["state"] = info and info["statename"].lower()
        return info if seen["state"] == wanted else None

    return wait_until(reached, timeout,
                      lambda: f"{instance_id} to be {wanted} (it is {seen.get('state')})")


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


def quiet_snapshot(h):
    """:func:`snapshot` of the home, less what a running app and nginx change by
    themselves (sarge's own log stays in)."""
    return {path: info for path, info in snapshot(h.path).items()
            if not path.startswith(("var/run/", "var/runtime/", "var/nginx/"))
            and not (path.startswith("var/log/") and path != "var/log/sarge.log")}


def state_files(h, under=("",)):
    """Every file of the home (of its folders ``under``) with its mode and content (a
    link: its target), and every folder with its mode; the logs and lock files left out:
    what a failed deploy must leave as it was (a state file written again as it was
    counts as unchanged)."""
    found = {}
    for top in under:
        found.update(_state_files(h, os.path.join(h.path, top)))
    return found


def _state_files(h, top):
    found = {}
    for root, dirs, names in os.walk(top):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), h.path)] = os.lstat(
                os.path.join(root, name)).st_mode
        for name in names:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, h.path)
            if rel.startswith("var/log/") or name.endswith(".lock"):
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = (st.st_mode, os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    found[rel] = (st.st_mode, f.read())
            else:  # supervisord's socket, say
                found[rel] = st.st_mode
    return found


WEBAPP = os.path.join(HERE, "apps", "webapp")


@pytest.fixture
def source(tmp_path):
    """The fast tier's app source: a Procfile (its command is never run: the fake
    supervisord "runs" an in-process server), a VERSION, requirements for an
    environment (tests/fakes.py)."""
    path = tmp_path / "src"
    path.mkdir()
    (path / "Procfile").write_text("web: serve --port $PORT\n")
    (path / "VERSION").write_text("1")
    (path / "requirements.txt").write_text("gunicorn\n")
    return path

#: The wheels of the real apps (tests/apps/wheels.txt), fetched by scripts/setup.
WHEELS = os.path.join(os.path.dirname(HERE), ".cache", "wheels")
#: Settings for a home whose deploys install from :data:`WHEELS` only: no network.
OFFLINE = {"pip_args = []": f'pip_args = ["--no-index", "--find-links", {json.dumps(WHEELS)}]'}


def needs_wheels():
    """Skip unless scripts/setup fetched the real apps' wheels."""
    if not os.path.isfile(os.path.join(WHEELS, ".list")):
        pytest.skip("no .cache/wheels: run scripts/setup")


@pytest.fixture
def redis_server(tmp_path_factory):
    """A real redis-server on 127.0.0.1 at a port of this worker's range (no disk
    persistence), for the tests' Celery app: its URL."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/setup installs it)")
    port = port_base() + 980
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(port), 10, "redis-server to listen", ignore=(OSError,))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(port) -> bool:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")


@pytest.fixture
def webapp(tmp_path):
    """A copy of tests/apps/webapp to change and deploy."""
    import shutil

    path = tmp_path / "webapp"
    shutil.copytree(WEBAPP, path)
    return path


class Clients:
    """Threads running :meth:`client` (given its number) until stopped: ``with Clients(...)
    as load: ...`` starts them and, at the end, stops and joins them. Subclasses count
    what they see."""

    def __init__(self, clients):
        import threading

        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(n,)) for n in range(clients)]

    def client(self, n):  # pragma: no cover - each kind has its own
        raise NotImplementedError

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()


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
        wait_until(lambda: subprocess.run(["userdel", name], capture_output=True).returncode
                   == 0, 5, f"userdel {name} (its processes gone)", interval=0.1)


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


def tmpfs():
    """/dev/shm when it is there to write in (a tmpfs), else None: for the tests that
    make trees thousands of folders deep, which a virtual disk shared by parallel runs
    makes (and ``rm -rf`` removes) fifty times slower. What those tests test is sarge's
    removal, which does the same on any filesystem."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


@pytest.fixture
def tmpfs_path(tmp_path):
    """A new folder on :func:`tmpfs` (else ``tmp_path``), removed after the test."""
    if tmpfs() is None:
        yield tmp_path
        return
    path = tempfile.mkdtemp(prefix="sarge-test-", dir=tmpfs())
    yield pathlib.Path(path)
    subprocess.run(["rm", "-rf", "--", path], check=True)  # however deep


def _open_home(parent_dir=None):
    parent = tempfile.mkdtemp(prefix="sarge-u", dir=parent_dir)
    os.chmod(parent, 0o755)
    h = make_home(os.path.join(parent, "home"), user="")
    start_supervisord(h)
    yield h
    kill_home(h)
    subprocess.run(["rm", "-rf", "--", parent], check=True)  # however deep


@pytest.fixture
def open_home():
    """A home in a folder every user can traverse (pytest's own temporary folders are
    private to root), with supervisord running as root; app user: none named yet."""
    yield from _open_home()


@pytest.fixture
def open_tmpfs_home():
    """:func:`open_home`, on :func:`tmpfs`."""
    yield from _open_home(tmpfs())


@pytest.fixture
def running_on_tmpfs(tmpfs_path):
    """:func:`running`, on :func:`tmpfs`."""
    h = make_home(tmpfs_path / "home")
    start_supervisord(h)
    yield h
    kill_home(h)


def name_user(h, user, key="default"):
    """Name ``user`` in the home's [users] (``key``), and, when it cannot run this Python
    (it lives in root's private home here), set [deploy] python to one it can, as an
    operator must: a deploy refuses a home whose apps' user cannot run its Python."""
    edit_settings(h, {f'{key} = ""': f'{key} = "{user}"'})
    with open(h.settings_path) as f:
        unset = 'python = ""' in f.read()
    if unset and key != "frontend" and user != "root":
        python = python_for(users.lookup(str(user)))
        if python != sys.executable:
            edit_settings(h, {'python = ""': f'python = "{python}"'})


def owner(path):
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)


def process_user(h, name):
    info = h.supervisor.process(name)
    return psutil.Process(info["pid"]).username()




# -- the command line in this process ---------------------------------------------------

def run_main(argv):
    """``sarge.cli.main(argv)`` in this process, as the ``sarge`` command runs it (a real
    :class:`Home` on the path in ``argv``): (exit status, stdout, stderr). For what needs
    no other process: a command that would exec (``run``) stays a real process."""
    import contextlib
    import io

    from sarge.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        else:  # pragma: no cover - main always exits
            raise AssertionError("sarge.cli.main returned instead of exiting")
    return code, out.getvalue(), err.getvalue()


def invoke(h, *args):
    """``sarge HOME ARGS`` in this process with ``h`` (a :class:`Home`, with a fake
    supervisord, say) as the home the command line makes: click's CliRunner, with
    ``make_home`` injected as ``ctx.obj``. Returns click's Result (exception included:
    turning it into one line is :func:`sarge.cli.main`'s job, see :func:`run_main`)."""
    import inspect

    from click.testing import CliRunner

    from sarge.cli import cli

    def make_home(path):
        assert os.path.abspath(path) == os.path.abspath(h.path), path
        return h

    # click < 8.2 mixes stderr into the output unless told not to
    kwargs = ({"mix_stderr": False}
              if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {})
    return CliRunner(**kwargs).invoke(cli, [str(h.path), *map(str, args)], obj=make_home)


def refused_in_process(h, *args):
    """Run ``args`` with :func:`invoke`; check that it was refused with a SargeError whose
    message is one line, and that it printed nothing on stdout. Returns the message."""
    from sarge.errors import SargeError

    result = invoke(h, *args)
    assert isinstance(result.exception, SargeError), (args, result.exception, result.output)
    assert result.stdout == "", (args, result.stdout)
    message = str(result.exception)
    assert message and "\n" not in message, (args, message)
    return message
