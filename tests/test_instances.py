"""The instance lifecycle against a real supervisord: new, start, stop, restart, destroy."""

import configparser
import json
import os
import pathlib
import re
import select
import signal
import subprocess
import sys
import time

import psutil
import pytest

from sarge.ports import port_is_free

from .conftest import (
    ENVSERVER,
    edit_settings,
    get,
    kill_home,
    new,
    port_base,
    put_server,
    rpc,
    sarge,
    start_supervisord,
    stop_supervisord,
    wait_for_state,
    wait_gone,
    wait_until,
)


def program(h, instance_id):
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"))
    assert parser.read(h.program_path(instance_id))
    return parser["program:" + instance_id + "_web"]


def supervisorctl(h, *args):
    return subprocess.run([os.path.join(h.path, "bin", "supervisorctl"), *args],
                          capture_output=True, text=True)


def free_ports():
    """The free ports at the start of this worker's range, as found now: a process of an
    earlier test on this worker may still hold its port while it ends."""
    return [p for p in range(port_base(), port_base() + 20) if port_is_free(p)]


def test_new_prints_only_the_id_and_makes_a_stopped_program(running):
    lowest = free_ports()[0]
    result = sarge(running, "new", '{"application_name": "web"}')
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    assert result.stdout == instance_id + "\n"
    assert re.fullmatch(r"web-[A-Za-z0-9]{6}", instance_id)
    assert os.path.isdir(running.instance_dir(instance_id))
    assert os.path.isdir(running.data_dir("web"))
    section = program(running, instance_id)
    assert section["autostart"] == "false"
    assert section["directory"] == running.path  # the launcher goes to the instance itself
    # the stop signal to the main process alone, the group killed after stopwaitsecs
    assert (section["stopasgroup"], section["killasgroup"]) == ("false", "true")
    assert (section["stopsignal"], section["stopwaitsecs"]) == ("TERM", "5")
    assert section["stdout_logfile"] == running.log_path(instance_id)
    listing = json.loads(sarge(running, "list", "--json", check=True).stdout)["instances"]
    assert [(i["id"], i["application_name"], i["port"], i["state"]) for i in listing] == [
        (instance_id, "web", lowest, "stopped")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listing[0]["created"])
    status = supervisorctl(running, "status", instance_id + ":web")
    assert instance_id in status.stdout and "STOPPED" in status.stdout


def test_ports_are_unique_and_skip_ports_in_use(running):
    """The lowest free ports of the range, in turn, past one a server of the test's holds.
    (What is free is looked at first: a process of an earlier test on this worker may
    still hold its port while it ends.)"""
    import socket

    free = free_ports()
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past an earlier TIME_WAIT
    busy.bind(("127.0.0.1", free[1]))
    busy.listen()
    try:
        ids = [new(running) for _ in range(3)]
    finally:
        busy.close()
    assert [running.get(i).port for i in ids] == [free[0], free[2], free[3]]


def test_start_serves_and_stop_stops(running):
    instance_id = new(running)
    put_server(running, instance_id)
    port = running.get(instance_id).port
    result = sarge(running, "start", instance_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert get(port) == (200, f"hello from {instance_id}\n")
    assert program(running, instance_id)["autostart"] == "true"
    assert "RUNNING" in supervisorctl(running, "status", instance_id + ":web").stdout
    # starting again is harmless
    again = sarge(running, "start", instance_id)
    assert again.returncode == 0 and "already running" in again.stderr

    pid = running.supervisor.process(instance_id + ":web")["pid"]
    assert sarge(running, "stop", instance_id).returncode == 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert program(running, instance_id)["autostart"] == "false"
    assert "STOPPED" in supervisorctl(running, "status", instance_id + ":web").stdout
    with pytest.raises(OSError):
        get(port, timeout=0)


def test_restart_gives_a_new_process(running):
    instance_id = new(running)
    put_server(running, instance_id)
    sarge(running, "start", instance_id, check=True)
    before = running.supervisor.process(instance_id + ":web")["pid"]
    sarge(running, "restart", instance_id, check=True)
    after = running.supervisor.process(instance_id + ":web")["pid"]
    assert after != before and psutil.pid_exists(after)
    assert get(running.get(instance_id).port)[0] == 200


def test_stop_ends_the_whole_process_tree(running):
    instance_id = new(running)
    put_server(running, instance_id, extra_args="--children 2")
    sarge(running, "start", instance_id, check=True)
    get(running.get(instance_id).port)
    root = psutil.Process(running.supervisor.process(instance_id + ":web")["pid"])
    tree = [root] + root.children(recursive=True)
    assert len(tree) == 3
    status = json.loads(sarge(running, "status", instance_id, "--json", check=True).stdout)
    assert status["processes"] == 3
    assert status["memory_rss"] >= sum(p.memory_info().rss for p in tree) * 0.5
    assert status["state"] == "running" and status["pid"] == root.pid
    assert status["uptime"] >= 0 and status["cpu_seconds"] >= 0
    sarge(running, "stop", instance_id, check=True)
    alive = wait_gone(tree, 5)
    assert alive == []


def test_start_without_a_server_is_refused_and_changes_nothing(running):
    instance_id = new(running)
    before = open(running.program_path(instance_id)).read()
    result = sarge(running, "start", instance_id)
    assert result.returncode == 1
    assert "no executable" in result.stderr and "server" in result.stderr
    path = os.path.join(running.instance_dir(instance_id), "server")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n")
    result = sarge(running, "start", instance_id)  # not executable
    assert result.returncode == 1 and "no executable" in result.stderr
    assert open(running.program_path(instance_id)).read() == before
    assert running.supervisor.process(instance_id + ":web")["statename"] == "STOPPED"


def test_destroy_removes_everything(running):
    instance_id = new(running)
    put_server(running, instance_id)
    sarge(running, "start", instance_id, check=True)
    port = running.get(instance_id).port
    pid = running.supervisor.process(instance_id + ":web")["pid"]
    result = sarge(running, "destroy", instance_id)
    assert result.returncode == 0, result.stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for path in (running.instance_dir(instance_id), running.program_path(instance_id),
                 running.record_path(instance_id), running.log_path(instance_id),
                 os.path.join(running.path, "var", "ports", str(port))):
        assert not os.path.lexists(path), path
    assert running.supervisor.process(instance_id + ":web") is None
    assert instance_id not in supervisorctl(running, "status").stdout
    assert json.loads(sarge(running, "list", "--json").stdout) == {"instances": []}
    # the port is free for the next instance
    assert running.get(new(running)).port == port
    with open(os.path.join(running.path, "var", "log", "sarge.log")) as f:
        log = f.read()
    assert f"new {instance_id} port={port}" in log and f"destroy {instance_id}" in log


def test_crash_loop_ends_in_fatal(running):
    instance_id = new(running)
    put_server(running, instance_id, script="#!/bin/sh\necho crashing\nexit 3\n")
    result = sarge(running, "start", instance_id)
    assert result.returncode == 1
    assert "exited as soon as it was started" in result.stderr
    assert "crashing" in result.stderr and result.stderr.count("\n") == 1
    wait_for_state(running, instance_id, "fatal", timeout=20)
    listing = json.loads(sarge(running, "list", "--json").stdout)["instances"]
    assert listing[0]["state"] == "fatal"
    assert "crashing" in sarge(running, "logs", instance_id).stdout


def test_a_crash_after_start_is_restarted(running):
    instance_id = new(running)
    put_server(running, instance_id)
    sarge(running, "start", instance_id, check=True)
    pid = running.supervisor.process(instance_id + ":web")["pid"]
    psutil.Process(pid).kill()

    def restarted():
        info = running.supervisor.process(instance_id + ":web")
        return info["statename"] == "RUNNING" and info["pid"] != pid

    wait_until(restarted, 10,
               lambda: f"a new process: {running.supervisor.process(instance_id + ':web')}")
    assert get(running.get(instance_id).port)[0] == 200


def test_supervisord_restart_restores_running_and_keeps_stopped(running):
    up, down = new(running), new(running)
    put_server(running, up)
    put_server(running, down)
    sarge(running, "start", up, check=True)
    sarge(running, "start", down, check=True)
    sarge(running, "stop", down, check=True)
    stop_supervisord(running)
    with pytest.raises(OSError):
        get(running.get(up).port, timeout=0)
    start_supervisord(running)
    wait_for_state(running, up, "running", timeout=15)
    assert get(running.get(up).port)[0] == 200
    assert running.supervisor.process(down + ":web")["statename"] == "STOPPED"


def wait_for_text(path, text, timeout=10):
    """Wait until the file ``path`` holds ``text``: a line that supervisord (or the crash
    watch) writes in its own time, after what the test did returned."""
    wait_until(lambda: text in pathlib.Path(path).read_text(), timeout,
               f"{text!r} in {path}")


def test_logs_prints_the_last_lines_and_follows(running):
    instance_id = new(running)
    put_server(running, instance_id)
    sarge(running, "start", instance_id, check=True)
    port = running.get(instance_id).port
    for n in range(5):
        get(port, f"/n{n}")
    # supervisord writes what the server printed to the log in its own time, after the answer
    log = running.log_path(instance_id, "web")
    wait_for_text(log, "/n4")
    lines = sarge(running, "logs", instance_id, "-n", "2", check=True).stdout.splitlines()
    assert len(lines) == 2 and "/n3" in lines[0] and "/n4" in lines[1]
    follower = subprocess.Popen([os.path.join(running.path, "bin", "sarge"), "logs",
                                 instance_id, "-n", "0", "-f"], stdout=subprocess.PIPE)
    try:
        # A request made before the follower reached the end of the log is not "new":
        # request again until one comes through (never a read that can block for good).
        seen = b""
        deadline = time.monotonic() + 20
        while b"/followed" not in seen:
            assert time.monotonic() < deadline, seen
            get(port, "/followed")
            if select.select([follower.stdout], [], [], 0.5)[0]:
                seen += os.read(follower.stdout.fileno(), 65536)
    finally:
        follower.kill()
        follower.wait()


def test_status_of_all_instances(running):
    a, b = new(running), new(running, "api")
    put_server(running, a)
    sarge(running, "start", a, check=True)
    data = json.loads(sarge(running, "status", "--json", check=True).stdout)["instances"]
    by_id = {r["id"]: r for r in data}
    assert by_id[a]["state"] == "running" and by_id[a]["memory_rss"] > 0
    assert by_id[b]["state"] == "stopped" and by_id[b]["pid"] is None
    table = sarge(running, "status", check=True).stdout
    assert a in table and b in table and "MEMORY" in table


def test_new_falls_back_to_reload_without_the_sarge_extension(home):
    # a supervisord started from an older configuration, without [rpcinterface:sarge]
    with open(home.supervisord_conf) as f:
        text = f.read()
    start = text.index("; sarge.addProgramFile")
    end = text.index("[supervisorctl]")
    with open(home.supervisord_conf, "w") as f:
        f.write(text[:start] + text[end:])
    start_supervisord(home)
    try:
        instance_id = new(home)
        assert home.supervisor.process(instance_id + ":web")["statename"] == "STOPPED"
        put_server(home, instance_id)
        sarge(home, "start", instance_id, check=True)
        assert get(home.get(instance_id).port)[0] == 200
    finally:
        kill_home(home)


def test_the_sarge_extension_reports_a_bad_file(running):
    from supervisor.xmlrpc import Faults

    from sarge.errors import SupervisorError

    path = os.path.join(running.path, "etc", "supervisor.d", "broken.conf")
    with open(path, "w") as f:
        f.write("[program:broken]\nstartsecs = many\ncommand = /bin/true\n")
    try:
        with pytest.raises(SupervisorError) as info:
            running.supervisor.add("broken", path)
        assert info.value.code == Faults.CANT_REREAD and "broken.conf" in str(info.value)
        assert "cannot read its configuration" in str(info.value)
    finally:
        os.unlink(path)
    assert rpc(running).sarge.getAPIVersion() == "1"


def test_usr2_reopens_the_logs_for_logrotate(running):
    instance_id = new(running)
    put_server(running, instance_id)
    sarge(running, "start", instance_id, check=True)
    port = running.get(instance_id).port
    get(port, "/before")
    log = running.log_path(instance_id)
    os.rename(log, log + ".rotated")  # what logrotate does
    with open(running.pidfile) as f:
        os.kill(int(f.read()), signal.SIGUSR2)
    wait_until(lambda: os.path.exists(log), 10, f"supervisord to reopen {log}")
    get(port, "/after")
    wait_for_text(log, "/after", 5)
    assert "/before" in open(log + ".rotated").read()
    assert "/before" not in open(log).read()


def test_logrotate_snippet_rotates_and_reopens(running, tmp_path):
    import shutil

    instance_id = new(running)
    put_server(running, instance_id)
    sarge(running, "start", instance_id, check=True)
    port = running.get(instance_id).port
    get(port, "/before")
    log = running.log_path(instance_id)  # supervisord writes the line in its own time
    wait_for_text(log, "/before")
    snippet = sarge(running, "init", "--logrotate", check=True).stdout
    assert running.log_dir in snippet and "USR2" in snippet
    conf = tmp_path / "sarge.logrotate"
    conf.write_text(snippet)
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    subprocess.run([logrotate, "-f", "-s", str(tmp_path / "state"), str(conf)], check=True)
    assert "/before" in open(log + ".1").read()

    def logged():
        get(port, "/after")
        return os.path.exists(log) and "/after" in open(log).read()

    wait_until(logged, 10, f"a request logged in the reopened {log}", interval=0.2)


def test_supervisord_killed_then_started_again_brings_everything_back(running):
    up, down = new(running), new(running)
    put_server(running, up, extra_args="--children 1")
    put_server(running, down)
    sarge(running, "start", up, check=True)
    sarge(running, "start", down, check=True)
    sarge(running, "stop", down, check=True)
    port = running.get(up).port
    old = psutil.Process(running.supervisor.process(up + ":web")["pid"])
    old_tree = [old] + old.children(recursive=True)
    psutil.Process(int(open(running.pidfile).read())).kill()  # SIGKILL: children live on
    time.sleep(0.5)
    assert all(p.is_running() for p in old_tree)  # orphans, still holding the port
    start_supervisord(running)
    info = wait_for_state(running, up, "running", timeout=30)
    assert info["pid"] != old.pid
    alive = wait_gone(old_tree, 10)
    assert alive == []  # the launcher ended the orphans before starting again
    assert get(port)[1] == f"hello from {up}\n"
    assert running.supervisor.process(down + ":web")["statename"] == "STOPPED"


def test_a_process_that_ignores_sigterm_is_killed_with_its_children(running):
    edit_settings(running, {"stopwaitsecs = 5": "stopwaitsecs = 2"})
    instance_id = new(running)
    put_server(running, instance_id, script=(
        "#!/bin/sh\ntrap '' TERM\nsleep 3600 &\nsleep 3600 &\n"
        f"exec {sys.executable} -c 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)'\n"))
    sarge(running, "start", instance_id, check=True)
    root = psutil.Process(running.supervisor.process(instance_id + ":web")["pid"])
    tree = [root] + root.children(recursive=True)
    pgid = os.getpgid(root.pid)
    group = [p for p in psutil.process_iter() if _pgid(p) == pgid]
    assert len(group) >= 3  # the server and the two sleeps it left in its group
    started = time.monotonic()
    sarge(running, "stop", instance_id, check=True)
    assert time.monotonic() - started < 10
    alive = wait_gone(group + tree, 5)
    assert alive == []


def test_what_a_stopped_process_left_in_its_group_is_ended(running):
    """The stop signal goes to the main process alone; what it leaves in its process
    group when it exits (a child it did not wait for) gets SIGTERM then."""
    instance_id = new(running)
    put_server(running, instance_id, script=(
        f"#!/bin/sh\nsleep 3600 &\nexec {sys.executable} {ENVSERVER}\n"))
    sarge(running, "start", instance_id, check=True)
    root = psutil.Process(running.supervisor.process(instance_id + ":web")["pid"])
    group = wait_until(lambda: [p for p in psutil.process_iter() if _pgid(p) == root.pid
                                and p.pid != root.pid], 5, "the sleep in its group")
    sarge(running, "stop", instance_id, check=True)
    alive = wait_gone(group + [root], 5)
    assert alive == []


def _pgid(proc):
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def test_a_crash_loop_after_startsecs_is_stopped_and_shown_fatal(home):
    edit_settings(home, {"crash_limit = 10": "crash_limit = 2"})
    start_supervisord(home)
    try:
        instance_id = new(home)
        put_server(home, instance_id, script=(
            "#!/bin/sh\necho serving a while\nsleep 2\necho 'giving up' >&2\nexit 3\n"))
        sarge(home, "start", instance_id, check=True)  # up past startsecs, and the RPC wait
        wait_until(lambda: os.path.exists(home.crash_path(instance_id)), 30,
                   "the crash watch to stop it", interval=0.2)
        wait_for_state(home, instance_id, "stopped", timeout=10)
        rows = json.loads(sarge(home, "list", "--json", check=True).stdout)["instances"]
        assert rows[0]["state"] == "fatal"
        status = json.loads(sarge(home, "status", instance_id, "--json", check=True).stdout)
        assert status["state"] == "fatal"
        assert status["crashed"]["exitstatus"] == 3
        assert "giving up" in "\n".join(status["crashed"]["log"])
        assert "crash_limit" in status["crashed"]["reason"]
        assert "autostart = false" in open(home.program_path(instance_id)).read()
        # the watch says why in the action log once its stop has returned
        wait_for_text(os.path.join(home.log_dir, "sarge.log"), f"crash-loop {instance_id}")
        # start clears the mark
        put_server(home, instance_id)
        sarge(home, "start", instance_id, check=True)
        assert json.loads(sarge(home, "list", "--json").stdout)["instances"][0]["state"] == \
            "running"
    finally:
        kill_home(home)


def test_a_stop_right_after_a_start_is_quick_and_leaves_nothing(running):
    instance_id = new(running)
    put_server(running, instance_id, extra_args="--children 1")
    name = instance_id + ":web"
    for _ in range(5):
        started = time.monotonic()
        rpc(running).supervisor.startProcess(name, False)  # returns before the exec
        running.supervisor.stop(name)  # within milliseconds
        assert time.monotonic() - started < 3  # not the whole stopwaitsecs (5 s)
        assert running.supervisor.process(name)["statename"] == "STOPPED"
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if "envserver.py" in " ".join(p.info["cmdline"] or [])
                 and p.environ().get("SARGE_INSTANCE") == instance_id]
    assert leftovers == []


def test_supervisorctl_update_leaves_started_and_stopped_instances_alone(running):
    up, down = new(running), new(running)
    put_server(running, up)
    put_server(running, down)
    sarge(running, "start", up, check=True)
    sarge(running, "start", down, check=True)
    sarge(running, "stop", down, check=True)
    pid = running.supervisor.process(up + ":web")["pid"]
    result = supervisorctl(running, "update")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "updated" not in result.stdout and "removed" not in result.stdout, result.stdout
    assert running.supervisor.process(up + ":web")["pid"] == pid
    assert running.supervisor.process(down + ":web")["statename"] == "STOPPED"


def test_supervisord_shuts_down_quickly_with_many_instances(home):
    for _ in range(30):
        home.lifecycle.new("web")  # supervisord is down: no reload per instance
    start_supervisord(home)
    pid = int(open(home.pidfile).read())
    started = time.monotonic()
    subprocess.run([os.path.join(home.path, "bin", "supervisorctl"), "shutdown"], check=True,
                   capture_output=True)
    assert wait_gone([psutil.Process(pid)], 30) == []
    # supervisord stops one group per tick (1 s) while anything still runs: the crash
    # watch, stopped last, used to make this take about a second per instance
    assert time.monotonic() - started < 15  # was ~30 s: a second per instance
