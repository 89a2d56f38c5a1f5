"""What a failed deploy and a crash loop report, with real supervisord and real processes:
the real exit status (supervisord's own info says 0 for a process that exits before
startsecs), the log of the process type that failed, the logs kept in var/log/failed,
and the truth about what serves the app."""

import json
import os
import sys

import pytest

from sarge.supervisord import exits

from .conftest import (
    ENVSERVER,
    deploy,
    edit_settings,
    front,
    kill_home,
    listen_port,
    new,
    put_server,
    sarge,
    start_supervisord,
    wait_until,
)


def server_app(path, script):
    path.mkdir()
    (path / "server").write_text(script)
    (path / "server").chmod(0o755)
    return path


@pytest.mark.parametrize("status", [1, 3])
def test_a_first_deploy_whose_app_exits_says_its_status_and_that_nothing_serves(
        running, tmp_path, status):
    source = server_app(tmp_path / "app", f"#!/bin/sh\necho 'cannot start: no DB' >&2\n"
                                          f"exit {status}\n")
    result = deploy(running, source, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}")
    assert result.returncode == 1
    err = result.stderr
    assert f"its web process exited (exit status {status}) before it answered" in err, err
    assert "nothing was serving web, and nothing does now" in err and "keeps serving" not in err
    assert "Last lines of its web log:\n  cannot start: no DB" in err
    (kept,) = os.listdir(running.failed_logs_dir)
    path = os.path.join(running.failed_logs_dir, kept)
    assert f"Its log is kept: {path}." in err
    assert "cannot start: no DB" in open(path).read()
    assert running.instances() == []


def test_a_dead_worker_shows_its_own_log_and_status(running, tmp_path):
    source = tmp_path / "app"
    source.mkdir()
    (source / "Procfile").write_text(
        f"web: sleep 1; exec {sys.executable} {ENVSERVER}\n"  # after the worker's death
        "worker: echo 'worker: no broker at redis://nowhere'; exit 3\n")
    port = listen_port(1)
    v1 = server_app(tmp_path / "v1", f"#!/bin/sh\nexec {sys.executable} {ENVSERVER}\n")
    first = deploy(running, v1, "--app", "web", "--listen", f"127.0.0.1:{port}", check=True)
    result = deploy(running, source, "--app", "web")
    assert result.returncode == 1
    err = result.stderr
    assert "its worker process exited (exit status 3)" in err, err
    assert "Last lines of its worker log:\n  worker: no broker at redis://nowhere" in err
    assert f"the current version ({first.stdout.strip()}) keeps serving" in err
    names = sorted(os.listdir(running.failed_logs_dir))
    assert [n.rpartition("-")[2] for n in names] == ["web.log", "worker.log"]
    assert all(os.path.join(running.failed_logs_dir, n) in err for n in names)
    assert front(port)[0] == 200


def test_a_crash_mark_has_each_instances_own_exit_status(home):
    """Two instances crash in a loop at once, one exiting 1, the other 3: supervisord's
    log names the process type alone (web), the pid tells them apart. (Each runs 2 s,
    past ``startsecs`` (1): ``sarge start`` waits for RUNNING, and a supervisord slow on
    a loaded machine sees a process that exits 0.2 s after startsecs as never started.)"""
    edit_settings(home, {"crash_limit = 10": "crash_limit = 2"})
    start_supervisord(home)
    try:
        ids = {}
        for status in (1, 3):
            ids[status] = new(home)
            put_server(home, ids[status], script=(
                f"#!/bin/sh\necho serving a while\nsleep 2\nexit {status}\n"))
        for instance_id in ids.values():
            sarge(home, "start", instance_id, check=True)
        for status, instance_id in ids.items():
            wait_until(lambda: os.path.exists(home.crash_path(instance_id)), 30,
                       f"the crash watch to stop {instance_id}", interval=0.2)
            shown = json.loads(sarge(home, "status", instance_id, "--json").stdout)
            assert shown["crashed"]["exitstatus"] == status, shown
    finally:
        kill_home(home)


LOG = """\
2024-05-01 12:00:00,000 INFO spawned: 'web' with pid 10
2024-05-01 12:00:00,100 INFO spawned: 'web' with pid 11
2024-05-01 12:00:00,200 WARN exited: web (exit status 1; not expected)
2024-05-01 12:00:00,300 INFO spawned: 'worker' with pid 12
2024-05-01 12:00:00,400 WARN exited: web (terminated by SIGKILL; not expected)
2024-05-01 12:00:00,500 WARN exited: worker (exit status 3; expected)
"""


@pytest.mark.fast
def test_the_exit_is_read_from_supervisords_log_after_the_processs_spawn(tmp_path):
    (tmp_path / "supervisord.log").write_text(LOG)
    assert exits.last_exit(str(tmp_path), "worker", 12) == "exit status 3"
    assert exits.last_exit(str(tmp_path), "web", 10) == "exit status 1"
    assert exits.last_exit(str(tmp_path), "web", None) == "terminated by SIGKILL"
    assert exits.last_exit(str(tmp_path), "web", 99) == "terminated by SIGKILL"  # rotated
    assert exits.last_exit(str(tmp_path), "clock", 13) is None
    assert exits.status_of("exit status 3") == 3
    assert exits.status_of("terminated by SIGKILL") is None and exits.status_of(None) is None


def test_the_extension_says_the_exit_status_supervisord_forgets(running):
    instance_id = new(running)
    put_server(running, instance_id, script="#!/bin/sh\nexit 3\n")
    assert sarge(running, "start", instance_id).returncode == 1
    wait_until(lambda: running.supervisor.process(instance_id + ":web")["statename"] == "FATAL",
               20, "supervisord to give up")
    assert running.supervisor.process(instance_id + ":web")["exitstatus"] == 0  # forgotten
    assert running.supervisor.last_exit(instance_id + ":web") == "exit status 3"
    assert running.supervisor.last_exit(instance_id + ":nothing") is None


class OldExtension:
    """A supervisord whose sarge extension is version 1, without getLastExit: a proxy
    answering ``getattr(proxy, "sarge.METHOD")`` as ``xmlrpc.client.ServerProxy`` does."""

    def __getattr__(self, name):
        import xmlrpc.client

        from supervisor.xmlrpc import Faults

        if name == "sarge.getAPIVersion":
            return lambda: "1"

        def unknown(*args):
            raise xmlrpc.client.Fault(Faults.UNKNOWN_METHOD, "UNKNOWN_METHOD")
        return unknown


@pytest.mark.fast
def test_a_supervisord_without_get_last_exit_leaves_it_to_the_log(tmp_path):
    from sarge.layout import Layout
    from sarge.supervisord.client import Supervisor

    client = Supervisor("/nowhere.sock", connect=OldExtension)
    assert client.last_exit("web-abc123:web") is None
    layout = Layout(tmp_path)
    os.makedirs(layout.state_dir("web-abc123"))
    os.makedirs(layout.log_dir)
    with open(layout.pid_path("web-abc123", "web"), "w") as f:
        f.write("10\n")
    (tmp_path / "var" / "log" / "supervisord.log").write_text(LOG)
    assert exits.how_exited(layout, client, "web-abc123", "web") == "exit status 1"
    assert exits.how_exited(layout, client, "web-abc123", "clock",
                            info={"statename": "FATAL", "exitstatus": 0}) == (
        "exit status unknown")  # never supervisord's made-up 0
    assert exits.how_exited(layout, client, "web-abc123", "clock",
                            info={"statename": "EXITED", "exitstatus": 4}) == "exit status 4"
