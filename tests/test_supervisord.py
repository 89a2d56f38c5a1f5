"""The supervisord side: the client's faults, the extension's version, the crash watch,
and the module names that homes made before 0.2 keep in their files."""

import os
import subprocess
import time
import xmlrpc.client

import pytest

from sarge.layout import Layout
from sarge.supervisord import crashmark
from sarge.supervisord.exits import last_exit, status_of

from .conftest import (
    edit_settings,
    get,
    kill_home,
    listen_port,
    new,
    put_server,
    sarge,
    start_supervisord,
    stop_supervisord,
    wait_until,
)


def supervisorctl(h, *args):
    return subprocess.run([os.path.join(h.path, "bin", "supervisorctl"), *args],
                          capture_output=True, text=True, timeout=60)


def raw_rpc(h):
    """supervisord's XML-RPC, without sarge's client in between."""
    from supervisor.xmlrpc import SupervisorTransport

    return xmlrpc.client.ServerProxy(
        "http://127.0.0.1", transport=SupervisorTransport(None, None, "unix://" + h.socket_path))


def test_a_home_made_before_0_2_keeps_working(home):
    """Its supervisord.conf and program files name sarge.rpc, sarge.crashwatch and
    sarge.launch: those still load, listen and launch."""
    with open(home.supervisord_conf) as f:
        text = f.read()
    old = (text.replace("sarge.supervisord.rpc:", "sarge.rpc:")
           .replace(" sarge.supervisord.crashwatch ", " sarge.crashwatch "))
    assert old != text and "sarge.supervisord" not in old
    with open(home.supervisord_conf, "w") as f:
        f.write(old)
    start_supervisord(home)
    try:
        instance_id = new(home)
        path = home.program_path(instance_id)
        with open(path) as f:
            program = f.read()
        assert " sarge.supervisord.launch " in program
        with open(path, "w") as f:
            f.write(program.replace(" sarge.supervisord.launch ", " sarge.launch "))
        subprocess.run([os.path.join(home.path, "bin", "supervisorctl"), "update"],
                       check=True, capture_output=True)
        put_server(home, instance_id)
        sarge(home, "start", instance_id, check=True)
        assert get(home.get(instance_id).port)[0] == 200
        assert home.supervisor._call("sarge.getAPIVersion") == "1"
        assert home.supervisor.process("sarge-crashwatch")["statename"] == "RUNNING"
        cmdline = " ".join(open(f"/proc/{home.supervisor.process('sarge-crashwatch')['pid']}"
                                "/cmdline").read().split("\0"))
        assert " sarge.crashwatch " in cmdline
    finally:
        kill_home(home)


def test_the_crash_mark_is_written_read_and_cleared(tmp_path):
    layout = Layout(tmp_path)
    os.makedirs(layout.state_dir("web-abc123"))
    os.makedirs(layout.log_dir)
    with open(layout.log_path("web-abc123", "worker"), "w") as f:
        f.write("".join(f"line {n}\n" for n in range(10)))
    assert crashmark.read(layout, "web-abc123") is None
    assert not crashmark.exists(layout, "web-abc123")
    crashmark.write(layout, "web-abc123", "worker", "worker exited 3 times", 3)
    mark = crashmark.read(layout, "web-abc123")
    assert mark["reason"] == "worker exited 3 times" and mark["exitstatus"] == 3
    assert mark["process"] == "worker" and mark["log"] == [f"line {n}" for n in range(5, 10)]
    assert crashmark.exists(layout, "web-abc123")
    with open(layout.crash_path("web-abc123"), "w") as f:
        f.write("{damaged")
    assert crashmark.read(layout, "web-abc123") == {"reason": "crash loop (damaged record)"}
    crashmark.clear(layout, "web-abc123")
    crashmark.clear(layout, "web-abc123")  # none is fine
    assert not crashmark.exists(layout, "web-abc123")


def test_the_state_sets_are_supervisors():
    from sarge.supervisord import states

    assert states.NAMES == ("STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED",
                            "FATAL", "UNKNOWN")
    assert states.RUNNING == {"STARTING", "RUNNING", "BACKOFF"}
    assert states.STOPPED == {"STOPPED", "EXITED", "FATAL", "UNKNOWN"}
    assert states.UP == {"RUNNING", "STARTING"}
    assert states.FAILED == {"BACKOFF", "EXITED", "FATAL"}
    assert states.DEAD == {"BACKOFF", "EXITED", "FATAL", "STOPPED", "UNKNOWN"}
    assert "STOPPING" not in states.RUNNING | states.STOPPED | states.DEAD


def one_line_error(result):
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_commands_say_in_one_line_that_supervisord_is_shutting_down(home, webapp):
    # an instance that ignores SIGTERM holds supervisord in SHUTDOWN_STATE for stopwaitsecs
    edit_settings(home, {"stopwaitsecs = 5": "stopwaitsecs = 60"})
    start_supervisord(home)
    try:
        instance_id = new(home)
        put_server(home, instance_id, script="#!/bin/sh\ntrap '' TERM\nexec sleep 300\n")
        sarge(home, "start", instance_id, check=True)
        assert supervisorctl(home, "shutdown").returncode == 0
        with pytest.raises(xmlrpc.client.Fault) as fault:
            raw_rpc(home).supervisor.getState()
        assert fault.value.faultCode == 6  # SHUTDOWN_STATE
        started = time.monotonic()
        for args in (["list"], ["status"], ["status", instance_id],
                     ["deploy", str(webapp), "--app", "web", "--listen",
                      f"127.0.0.1:{listen_port(40)}"]):
            message = one_line_error(sarge(home, *args))
            assert "supervisord is shutting down" in message, message
            assert os.path.join(home.path, "bin", "supervisord") in message, message
        assert time.monotonic() - started < 50  # all of it while supervisord was shutting down
    finally:
        kill_home(home)


def test_the_client_keeps_one_connection_and_finds_a_restarted_supervisord(home):
    """sarge's transport (the standard library's, on the unix socket): calls share one
    connection; one kept from a supervisord that has since restarted is made again; one
    that is gone is said not to run."""
    from sarge.errors import SupervisordNotRunning
    from sarge.supervisord.client import Supervisor

    def connection(client):
        return client._proxy("transport")._connection[1]

    start_supervisord(home)
    try:
        client = Supervisor(home.socket_path)
        assert "sarge-crashwatch" in client.processes()
        kept = connection(client).sock
        assert client.is_running() and connection(client).sock is kept
        stop_supervisord(home)
        start_supervisord(home)
        assert "sarge-crashwatch" in client.processes()
        assert connection(client).sock is not kept
        stop_supervisord(home)
        with pytest.raises(SupervisordNotRunning, match="nothing answers on"):
            client.processes()
    finally:
        kill_home(home)


@pytest.mark.fast
def test_the_fault_codes_are_supervisors_own():
    from supervisor import xmlrpc

    from sarge.supervisord.faults import Faults

    def codes(table):
        return {name: code for name, code in vars(table).items() if name.isupper()}
    assert codes(Faults) == codes(xmlrpc.Faults)


def test_every_fault_becomes_a_sarge_error_with_its_code():
    from supervisor.xmlrpc import Faults

    from sarge.errors import ProcessFailed, SupervisordShuttingDown, SupervisorError
    from sarge.supervisord.client import Supervisor

    client = Supervisor("/nowhere.sock", hint="start it with /h/bin/supervisord")
    for name, code in vars(Faults).items():
        if name.startswith("_"):
            continue
        error = client.error(code, f"{name}: web-abc123:web", "web-abc123:web", "stopProcess")
        assert isinstance(error, SupervisorError) and error.code == code, name
        assert "{" not in str(error) and ("web-abc123" in str(error) or name in (
            "UNKNOWN_METHOD", "SHUTDOWN_STATE", "CANT_REREAD")), (name, str(error))
    shutting = client.error(Faults.SHUTDOWN_STATE, "SHUTDOWN_STATE", "x", "getState")
    assert isinstance(shutting, SupervisordShuttingDown)
    assert "start it with /h/bin/supervisord" in str(shutting)
    assert isinstance(client.error(Faults.SPAWN_ERROR, "SPAWN_ERROR", "x"), ProcessFailed)
    assert client.error(999, "NEW_FAULT", "x").code == 999


def test_an_extension_of_another_version_says_to_restart_supervisord(running):
    from sarge.errors import SupervisorError
    from sarge.home import Home
    from sarge.supervisord.client import Supervisor

    instance_id = new(running)
    put_server(running, instance_id)
    hint = f"start it with {running.path}/bin/supervisord"
    # what a sarge upgraded under a running supervisord finds: another version than it needs
    newer = Supervisor(running.socket_path, hint=hint, expected_api="2")
    home = Home(running.path, supervisor=newer)
    for action in (lambda: home.lifecycle.start(instance_id), lambda: home.lifecycle.new("web"),
                   home.lifecycle.states, lambda: home.lifecycle.stop(instance_id)):
        with pytest.raises(SupervisorError) as info:
            action()
        message = str(info.value)
        assert "version 1 of sarge's extension" in message and "needs 2" in message
        assert "bin/supervisorctl shutdown" in message and hint in message
        assert "\n" not in message
    assert running.supervisor.process(instance_id + ":web")["statename"] == "STOPPED"
    assert len(running.instances()) == 1  # nothing was started or made


def test_the_extension_is_asked_once_and_one_without_it_is_fine(home):
    from sarge.supervisord.client import Supervisor

    class Counting(Supervisor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.sent = []

        def _send(self, method, args, about=None):
            self.sent.append(method)
            return super()._send(method, args, about)

    with open(home.supervisord_conf) as f:
        text = f.read()
    without = text.replace("[rpcinterface:sarge]", "[unused]")
    start_supervisord(home)
    try:
        client = Counting(home.socket_path)
        for _ in range(3):
            client.processes()
        assert client.sent == ["sarge.getAPIVersion"] + ["getAllProcessInfo"] * 3
        assert client.has_extension()
    finally:
        kill_home(home)
    with open(home.supervisord_conf, "w") as f:
        f.write(without)
    start_supervisord(home)
    try:
        client = Counting(home.socket_path, expected_api="2")
        assert not client.has_extension() and client.processes() is not None
        instance_id = new(home)  # through reloadConfig
        client.set_autostart(instance_id, True)  # nothing to tell
        assert client.sent.count("sarge.getAPIVersion") == 1
        assert "sarge.setAutostart" not in client.sent
    finally:
        kill_home(home)


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Recorder:
    """What the crash watch did: instances stopped, marks written, lines logged."""

    def __init__(self, fail=False):
        self.fail = fail
        self.stopped, self.marks, self.logged = [], [], []

    def stop(self, instance_id):
        from sarge.errors import SupervisorError

        if self.fail:
            raise SupervisorError("supervisord is not running")
        self.stopped.append(instance_id)

    def mark(self, instance_id, process, reason, pid=None):
        self.marks.append((instance_id, process, reason))

    def log(self, action, detail):
        self.logged.append((action, detail))


def crash_watch(limit=2, window=10.0, fail=False):
    from sarge.supervisord.crashwatch import CrashWatch

    clock, did = FakeClock(), Recorder(fail)
    watch = CrashWatch(limit, window, stop=did.stop, mark=did.mark, log=did.log, clock=clock)
    return watch, clock, did


def exit_of(group, process="web", expected="0"):
    return {"processname": process, "groupname": group, "from_state": "RUNNING",
            "expected": expected, "pid": "4242"}


def test_the_crash_watch_stops_an_instance_past_the_limit_once():
    watch, clock, did = crash_watch(limit=2, window=10)
    results = []
    for _ in range(4):
        clock.now += 3  # 3 exits in 6 s: more than 2 within 10 s
        results.append(watch.exited(exit_of("web-abc123", "worker")))
    assert results == [False, False, True, False]  # counting starts afresh after the stop
    assert did.stopped == ["web-abc123"]
    (instance_id, process, reason), = did.marks
    assert (instance_id, process) == ("web-abc123", "worker")
    assert "worker exited 3 times in 10s" in reason and "crash_limit = 2" in reason
    assert did.logged == [("crash-loop", f"web-abc123: {reason}")]


def test_the_crash_watch_forgets_exits_older_than_the_window():
    watch, clock, did = crash_watch(limit=2, window=10)
    for _ in range(30):
        clock.now += 5.5  # never more than 2 within any 10 s
        assert not watch.exited(exit_of("web-abc123"))
    assert did.stopped == [] and did.marks == [] and did.logged == []


def test_the_crash_watch_ignores_expected_exits_and_other_groups():
    watch, clock, did = crash_watch(limit=1, window=60)
    for _ in range(10):
        clock.now += 1
        for headers in (exit_of("web-abc123", expected="1"), exit_of("nginx", "nginx"),
                        exit_of("sarge-crashwatch", "sarge-crashwatch"), exit_of("")):
            assert not watch.exited(headers)
    assert did.stopped == []
    # instances are counted apart
    assert not watch.exited(exit_of("web-abc123"))
    assert not watch.exited(exit_of("api-xyz789"))
    assert watch.exited(exit_of("web-abc123"))
    assert did.stopped == ["web-abc123"]


def test_a_stop_that_fails_is_said_on_stderr_and_not_logged(capsys):
    watch, clock, did = crash_watch(limit=0, fail=True)
    assert watch.exited(exit_of("web-abc123"))
    assert did.logged == [] and len(did.marks) == 1
    assert "cannot stop web-abc123: supervisord is not running" in capsys.readouterr().err


def test_the_crash_watch_speaks_the_event_protocol(home):
    import io

    from sarge.supervisord import crashwatch

    def event(name, payload):
        return (f"ver:3.0 server:supervisor serial:1 pool:sarge-crashwatch poolserial:1 "
                f"eventname:{name} len:{len(payload)}\n{payload}")

    exited = "processname:nginx groupname:nginx from_state:RUNNING expected:0 pid:1"
    stdin = io.StringIO(event("PROCESS_STATE_EXITED", exited) + event("TICK_5", "when:5"))
    stdout = io.StringIO()
    assert crashwatch.main([home.path], stdin=stdin, stdout=stdout) == 0  # at the end of stdin
    assert stdout.getvalue() == "READY\nRESULT 2\nOK" * 2 + "READY\n"


def test_the_crash_watch_talks_on_the_url_supervisord_gives_it(running):
    from sarge.errors import SupervisordNotRunning
    from sarge.supervisord.crashwatch import supervisor_for

    url = {"SUPERVISOR_SERVER_URL": "unix://" + running.socket_path}
    assert "sarge-crashwatch" in supervisor_for("/nowhere.sock", url).processes()
    with pytest.raises(SupervisordNotRunning):  # by hand, on the home's socket
        supervisor_for("/nowhere.sock", {}).processes()
    assert "sarge-crashwatch" in supervisor_for(running.socket_path, {}).processes()


def test_repair_takes_a_program_of_before_0_2_for_sound(home):
    """Its command names the launcher's old module, which still runs (the shim)."""
    instance_id = new(home)
    path = home.program_path(instance_id)
    with open(path) as f:
        program = f.read()
    with open(path, "w") as f:
        f.write(program.replace(" sarge.supervisord.launch ", " sarge.launch "))
    result = sarge(home, "repair", "--dry-run")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    with open(path, "w") as f:  # any other command is damage all the same
        f.write(program.replace(" sarge.supervisord.launch ", " sarge.other "))
    assert "would fix:" in sarge(home, "repair", "--dry-run").stdout


def test_repair_takes_a_program_that_stops_its_whole_group_for_sound(home):
    """Written before a type's stop signal went to its main process alone."""
    instance_id = new(home)
    path = home.program_path(instance_id)
    with open(path) as f:
        program = f.read()
    assert "stopasgroup = false\n" in program
    with open(path, "w") as f:
        f.write(program.replace("stopasgroup = false\n", "stopasgroup = true\n"))
    result = sarge(home, "repair", "--dry-run")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    with open(path, "w") as f:
        f.write(program.replace("killasgroup = true\n", "killasgroup = false\n"))
    assert "would fix:" in sarge(home, "repair", "--dry-run").stdout


def test_supervisords_log_names_the_instance_of_each_process(running):
    """supervisord's own lines name the type alone (``spawned: 'web'``); the extension's
    say whose it is, with the pid and, for an exit, its status."""
    first, second = new(running), new(running)
    for instance_id in (first, second):
        put_server(running, instance_id)
        sarge(running, "start", instance_id, check=True)
    pid = running.supervisor.process(first + ":web")["pid"]
    put_server(running, second, script="#!/bin/sh\nsleep 1.5\nexit 3\n")
    os.kill(running.supervisor.process(second + ":web")["pid"], 9)  # it restarts, then exits
    sarge(running, "stop", first, check=True)
    log = os.path.join(running.log_dir, "supervisord.log")

    def lines():
        with open(log) as f:
            return f.read()

    wait_until(lambda: f"{second}:web: EXITED (was RUNNING" in lines() and "exit status 3"
               in lines(), 20, "the second instance's exit in supervisord.log")
    text = lines()
    assert f"spawned: 'web' with pid {pid}" in text  # supervisord's own, as before
    assert f"{first}:web: RUNNING (was STARTING, pid {pid})" in text
    assert f"{first}:web: STOPPED (was STOPPING, pid {pid}, exit status" in text
    assert f"{second}:web: EXITED (was RUNNING, pid " in text
    assert last_exit(running.log_dir, "web", instance_id=second) == "exit status 3"
    assert last_exit(running.log_dir, "web", instance_id=first) is None  # never exited itself


@pytest.mark.fast
def test_the_crash_watch_reads_the_status_of_its_own_instance(tmp_path):
    log = tmp_path / "supervisord.log"
    log.write_text(
        "2026-01-01 00:00:01,000 INFO web-aaaaaa:web: EXITED (was RUNNING, pid 10, exit "
        "status 3, not expected)\n"
        "2026-01-01 00:00:01,001 WARN exited: web (exit status 3; not expected)\n"
        "2026-01-01 00:00:02,000 INFO web-bbbbbb:web: EXITED (was RUNNING, pid 11, exit "
        "status 5, not expected)\n"
        "2026-01-01 00:00:02,001 WARN exited: web (exit status 5; not expected)\n")
    def status(instance_id):
        return status_of(last_exit(str(tmp_path), "web", instance_id=instance_id))

    assert status("web-aaaaaa") == 3  # not the later 5
    assert status("web-bbbbbb") == 5
    assert status("web-cccccc") is None
    # a supervisord without the extension's lines: its own, naming the type alone
    log.write_text("2026-01-01 00:00:01,001 WARN exited: web (exit status 4; not expected)\n")
    assert status("web-aaaaaa") == 4
