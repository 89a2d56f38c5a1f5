"""sarge-fleet against real hosts: an OpenSSH server per fake host (tests/sshd.py), each
host a sarge home of its own with its supervisord, nginx and app, all on 127.0.0.1.

The tests of this module share one fleet of three hosts (made once: a first rollout of
the test app to all three at once) and run in order on one worker; each checks what it
changed against what it found."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from sarge.errors import RolloutLocked

from .conftest import (
    OFFLINE,
    WEBAPP,
    front,
    kill_home,
    listen_port,
    make_home,
    needs_wheels,
    port_base,
    sarge,
    start_supervisord,
    stop_supervisord,
    wait_until,
)
from .sshd import FakeHost, keygen, needs_sshd, write_fleet
from .test_deploy import Load

pytestmark = pytest.mark.xdist_group("fleet")

FLEET = [sys.executable, "-m", "sarge.fleet"]


def fleet(path, *args, timeout=300):
    """``sarge-fleet -f PATH ARGS``: the CompletedProcess (text)."""
    return subprocess.run([*FLEET, "-f", str(path), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def listing(h):
    """The host's instances, from its home's ``list`` (in this process: what the fleet
    itself asks goes over SSH)."""
    return json.loads(sarge(h, "list", "--json", check=True).stdout)["instances"]


def current(h, app="web"):
    return next((r["id"] for r in listing(h) if r["application_name"] == app
                 and r["role"] == "current"), None)


class Fleet:
    """Three hosts: ``homes[i]`` behind ``hosts[i]`` (its sshd), the app's front-end of
    host i on ``ports[i]``; ``path`` the fleet file."""

    def __init__(self, root, count=3):
        self.root = root
        self.identity = root / "client_key"
        public = keygen(self.identity)
        self.homes, self.hosts, self.ports = [], [], []
        for i in range(count):
            h = make_home(root / f"h{i + 1}" / "home", offset=200 * i, settings=OFFLINE)
            start_supervisord(h)
            self.homes.append(h)
            self.hosts.append(FakeHost(root / f"h{i + 1}" / "ssh", f"h{i + 1}",
                                       port_base() + 960 + i, h.path, public).start())
            self.ports.append(listen_port(i))
        self.path = write_fleet(root, self.hosts, self.identity, rollout="limit = 1")
        with open(self.path) as f:  # each host's app on its own front-end port
            text = f.read()
        for host, port in zip(self.hosts, self.ports):
            text = text.replace(f'name = "{host.name}"',
                                f'name = "{host.name}"\nlisten = "127.0.0.1:{port}"')
        with open(self.path, "w") as f:
            f.write(text)

    def close(self):
        for host in self.hosts:
            host.stop()
        for h in self.homes:
            kill_home(h)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    needs_sshd()
    needs_wheels()
    root = tmp_path_factory.mktemp("fleet")
    source = root / "webapp"
    shutil.copytree(WEBAPP, source)
    f = Fleet(root)
    f.source = source
    try:
        result = fleet(f.path, "deploy", source, "--app", "web", "--limit", "100%")
        assert result.returncode == 0, result.stderr
        yield f
    finally:
        f.close()


def test_a_first_rollout_reaches_every_host_at_once(three):
    for h, port in zip(three.homes, three.ports):
        status, text = front(port)
        assert status == 200 and text == f"version 1 from {current(h)}\n"


@pytest.mark.heavy
def test_a_rollout_across_three_hosts_under_load_drops_nothing(three):
    """limit 1: host after host, each under load the whole time; then a fleet rollback."""
    before = [current(h) for h in three.homes]
    (three.source / "VERSION").write_text("2")
    loads = [Load(port, clients=3) for port in three.ports]
    for load in loads:
        load.__enter__()
    try:
        time.sleep(0.3)
        result = fleet(three.path, "deploy", three.source, "--app", "web", "--json")
        time.sleep(0.3)
    finally:
        for load in loads:
            load.__exit__(None, None, None)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["waves"] == 3
    assert [(r["host"], r["wave"], r["outcome"]) for r in report["hosts"]] == [
        ("h1", 1, "ok"), ("h2", 2, "ok"), ("h3", 3, "ok")]
    after = [current(h) for h in three.homes]
    assert [r["old"] for r in report["hosts"]] == before
    assert [r["new"] for r in report["hosts"]] == after
    for h, port, load in zip(three.homes, three.ports, loads):
        assert load.failures == [], load.failures[:5]
        assert load.ok > 20, load.ok
        assert front(port) == (200, f"version 2 from {current(h)}\n")
    # each host's own step lines, prefixed with its name, in wave order
    lines = result.stderr.splitlines()
    assert lines.index("wave 1/3: h1") < lines.index("wave 2/3: h2") < lines.index(
        "wave 3/3: h3")
    assert any(line.startswith("h2:   health check") for line in lines), result.stderr
    # one archive for all: the same sha256 in every host's history
    status = json.loads(fleet(three.path, "status", "--app", "web", "--json").stdout)
    assert {r["version"] for r in status["hosts"]} == {report["sha256"][:12]}

    result = fleet(three.path, "rollback", "web", "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert "wave 1/2: h1, h2" in result.stderr and "wave 2/2: h3" in result.stderr
    assert [current(h) for h in three.homes] == before
    rows = [line.split() for line in result.stdout.splitlines()]  # the summary table
    assert rows[0] == ["HOST", "WAVE", "OLD", "->", "NEW", "SECONDS", "OUTCOME"]
    assert [(r[0], r[1], r[2], r[4], r[6]) for r in rows[1:]] == [
        (f"h{i + 1}", str(1 + i // 2), after[i], before[i], "ok") for i in range(3)]


@pytest.fixture
def failing_h2(three):
    """``three`` with h2's health check made to answer 503 (its variables: the same
    archive fails on h2 only), version 3 in the source; h2's variable unset after."""
    result = fleet(three.path, "config", "web", "FAIL_HEALTH=1", "--hosts", "h2")
    assert result.returncode == 0, result.stderr
    (three.source / "VERSION").write_text("3")
    yield three
    result = fleet(three.path, "config", "web", "--unset", "FAIL_HEALTH")
    assert result.returncode == 0, result.stderr
    assert "FAIL_HEALTH" not in subprocess.run(
        [os.path.join(three.homes[1].path, "bin", "sarge"), "config", "web"],
        capture_output=True, text=True).stdout


def test_a_version_failing_on_the_second_host_stops_the_rollout_and_reverts_the_first(
        failing_h2):
    three = failing_h2
    before = [current(h) for h in three.homes]
    counts = [len(listing(h)) for h in three.homes]
    serving = [front(port) for port in three.ports]
    result = fleet(three.path, "deploy", three.source, "--app", "web", "--timeout", "3",
                   "--check", "/health", "--revert-on-failure", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [(r["host"], r["outcome"]) for r in report["hosts"]] == [
        ("h1", "reverted"), ("h2", "failed"), ("h3", "untouched")]
    assert "health check" in report["hosts"][1]["message"]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("sarge-fleet: deploy of web failed on h2: ")
    assert "1 host(s) not touched, 1 sent back to their previous instance" in error
    assert [current(h) for h in three.homes] == before  # nobody stays on version 3
    assert [front(port) for port in three.ports] == serving
    assert len(listing(three.homes[2])) == counts[2]  # untouched: not even an instance made


def test_without_revert_on_failure_the_hosts_done_keep_the_version_and_the_error_says_so(
        failing_h2):
    three = failing_h2
    serving = [front(port) for port in three.ports]
    result = fleet(three.path, "deploy", three.source, "--app", "web", "--timeout", "3",
                   "--check", "/health")
    assert result.returncode == 1
    assert "--revert-on-failure sends them back" in result.stderr
    assert front(three.ports[0])[1].startswith("version 3 ")
    assert [front(port) for port in three.ports[1:]] == serving[1:]


def test_a_host_that_is_down_stops_the_rollout_before_any_host_is_touched(three):
    three.hosts[2].stop()
    try:
        snapshot = [[r["id"] for r in listing(h)] for h in three.homes]
        result = fleet(three.path, "deploy", three.source, "--app", "web")
        assert result.returncode == 1
        assert result.stderr.startswith("sarge-fleet: 1 of 3 host(s) do not answer, so no "
                                        "host was touched: h3: cannot reach "), result.stderr
        assert "--skip-unreachable" in result.stderr
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
        assert [[r["id"] for r in listing(h)] for h in three.homes] == snapshot
        # status shows it, never hides it; exit status 1
        result = fleet(three.path, "status", "--app", "web")
        assert result.returncode == 1
        rows = [line.split() for line in result.stdout.splitlines()]
        assert rows[0] == ["HOST", "APP", "CURRENT", "STATE", "VERSION", "INSTANCES"]
        assert [row[0] for row in rows[1:]] == ["h1", "h2", "h3"]
        assert rows[3][2:4] == ["-", "unreachable"]
    finally:
        three.hosts[2].start()


def test_a_second_rollout_while_one_runs_is_refused(three):
    from sarge.fleet.fleetfile import load

    lock_path = load(three.path).lock_path
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from sarge.fleet.lock import FleetLock\n"
         f"with FleetLock({lock_path!r}, 'deploy web'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        before = [current(h) for h in three.homes]
        for args in (("deploy", three.source, "--app", "web"), ("rollback", "web")):
            result = fleet(three.path, *args)
            assert result.returncode == 1
            assert result.stderr.startswith(
                "sarge-fleet: another rollout of this fleet is running (deploy web by "), \
                result.stderr
        assert [current(h) for h in three.homes] == before
    finally:
        holder.kill()
        holder.wait()


def test_a_rollout_from_another_machine_is_refused_by_the_first_hosts_lock(three, tmp_path):
    """Another copy of the fleet file (another operator's machine): the lock beside it is
    not this one's, the lock on the first host is; it goes when its holder is killed."""
    import signal

    other = tmp_path / "fleet.toml"
    shutil.copy(three.path, other)
    shutil.copy(os.path.join(three.root, "known_hosts"), tmp_path / "known_hosts")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from sarge.fleet import fleetfile\n"
         "from sarge.fleet.lock import HostLock\n"
         "from sarge.fleet.remote import Remote\n"
         f"fleet = fleetfile.load({str(other)!r})\n"
         "with HostLock(Remote(fleet.hosts[0], fleet.ssh), 'deploy web'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        before = [current(h) for h in three.homes]
        result = fleet(three.path, "rollback", "web")
        assert result.returncode == 1
        assert result.stderr.startswith(
            "sarge-fleet: another rollout of this fleet is running (deploy web by "), \
            result.stderr
        assert "var/uploads/fleet.lock on h1)" in result.stderr
        assert [current(h) for h in three.homes] == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # its connection gone, the lock went with it
    from sarge.fleet import fleetfile
    from sarge.fleet.lock import HostLock
    from sarge.fleet.remote import Remote

    loaded = fleetfile.load(three.path)
    remote = Remote(loaded.hosts[0], loaded.ssh)
    try:
        wait_until(lambda: _takes(HostLock(remote, "test")), 10, "the lock to be free",
                   ignore=(RolloutLocked,))
    finally:
        remote.close()


def _takes(lock) -> bool:
    with lock:
        return True


def test_status_with_one_hosts_supervisord_stopped(three):
    h2 = three.homes[1]
    stop_supervisord(h2)
    try:
        result = fleet(three.path, "status", "--json")
        assert result.returncode == 0, result.stderr
        rows = {r["host"]: r for r in json.loads(result.stdout)["hosts"]}
        assert sorted(rows) == ["h1", "h2", "h3"]
        assert rows["h1"]["state"] == "running" and rows["h3"]["state"] == "running"
        assert rows["h2"]["state"] == "unknown" and rows["h2"]["current"] == current(h2)
    finally:
        start_supervisord(h2)


def test_config_values_never_reach_a_remote_command_line(three):
    secret = "s3cret-" + os.urandom(6).hex()
    result = fleet(three.path, "config", "web", f"TOKEN={secret}", "PLAIN=a b=c")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"h{i}: configuration saved" for i in (1, 2, 3)]
    for h, host in zip(three.homes, three.hosts):
        values = json.loads(subprocess.run(
            [os.path.join(h.path, "bin", "sarge"), "config", "web", "--json"],
            capture_output=True, text=True, check=True).stdout)
        assert values["TOKEN"] == secret and values["PLAIN"] == "a b=c"
        commands = host.commands()
        assert any(" config web --from-file " in c for c in commands), commands[-5:]
        assert not [c for c in commands if secret in c]
        uploads = os.listdir(os.path.join(h.path, "var", "uploads"))
        assert [n for n in uploads if not n.startswith("fleet.lock")] == []  # removed after
    result = fleet(three.path, "config", "web", "--unset", "TOKEN", "--unset", "PLAIN")
    assert result.returncode == 0, result.stderr


def test_run_passes_a_sarge_command_through(three):
    result = fleet(three.path, "run", "h2", "--", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["instances"] == listing(three.homes[1])
    result = fleet(three.path, "run", "--all", "--", "history", "-n", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert sorted({line.split(":")[0] for line in result.stdout.splitlines()}) == [
        "h1", "h2", "h3"]
    # one host: its own exit status and error line
    result = fleet(three.path, "run", "h1", "--", "rollback", "no-such-app")
    assert result.returncode == 1 and result.stderr.startswith("sarge: ")


def test_a_host_whose_key_is_not_known_is_refused(three, tmp_path):
    text = open(three.path).read().replace('known_hosts = "known_hosts"',
                                           f'known_hosts = "{tmp_path}/empty"')
    (tmp_path / "empty").write_text("")
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    result = fleet(path, "status", "--hosts", "h1", "--json")
    assert result.returncode == 1
    row = json.loads(result.stdout)["hosts"][0]
    assert row["state"] == "unreachable"
    assert row["error"] == (f"h1: the host key of 127.0.0.1:{three.hosts[0].port} is not "
                            "known: add it to [ssh] known_hosts (ssh-keyscan -p "
                            f"{three.hosts[0].port} 127.0.0.1)")


def test_hosts_behind_a_jump_host(three, tmp_path):
    """[ssh] gateway: every connection goes through the jump host's sshd (Fabric's
    gateway, a direct-tcpip channel); with it down, no host answers."""
    import getpass

    public = open(f"{three.identity}.pub").read().strip()
    jump = FakeHost(tmp_path / "jump", "jump", port_base() + 965, "/nonexistent",
                    public).start()
    try:
        text = open(three.path).read().replace(
            "connect_timeout = 30",
            f'connect_timeout = 30\ngateway = "{getpass.getuser()}@127.0.0.1:{jump.port}"')
        path = tmp_path / "fleet.toml"
        path.write_text(text)
        with open(tmp_path / "known_hosts", "w") as f:
            f.write(open(os.path.join(three.root, "known_hosts")).read()
                    + jump.known_hosts_line() + "\n")
        result = fleet(path, "status", "--app", "web", "--json")
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)["hosts"]
        assert [(r["host"], r["current"]) for r in rows] == [
            (f"h{i + 1}", current(h)) for i, h in enumerate(three.homes)]
    finally:
        jump.stop()
    result = fleet(path, "status", "--app", "web", "--json")
    assert result.returncode == 1
    assert {r["state"] for r in json.loads(result.stdout)["hosts"]} == {"unreachable"}


def _interruptible():
    """A child's SIGINT back to its default: a suite started in the background (``cmd &``
    in a script, nohup) ignores it, and children inherit that (the rollout then ran all
    its waves and exited 0)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_rollout_finishes_its_wave_and_starts_no_other(three):
    import signal

    before = [current(h) for h in three.homes]
    procfile = (three.source / "Procfile").read_text()
    (three.source / "Procfile").write_text(procfile + "release: sleep 3\n")
    (three.source / "VERSION").write_text("interrupted")
    try:
        proc = subprocess.Popen([*FLEET, "-f", three.path, "deploy", three.source, "--app",
                                 "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=_interruptible)
        seen = []
        for line in proc.stderr:  # h1's steps as they end: its release (3 s) is next
            seen.append(line)
            if line.startswith("h1:   environment"):
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        err = "".join(seen) + err
    finally:
        (three.source / "Procfile").write_text(procfile)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "sarge-fleet: interrupted"
    assert "wave 2/3" not in err
    assert current(three.homes[0]) != before[0]  # its deploy was not cut off
    assert front(three.ports[0])[1].startswith("version interrupted ")
    assert [current(h) for h in three.homes[1:]] == before[1:]
    # the lock went with the process
    result = fleet(three.path, "rollback", "web", "--hosts", "h1")
    assert result.returncode == 0, result.stderr
    assert current(three.homes[0]) == before[0]
