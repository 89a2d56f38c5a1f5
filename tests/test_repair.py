"""`sarge HOME repair`: damaged state files rebuilt from the folders, the port links, the
front-end's configuration and supervisord; nothing unidentified is ever removed."""

import json
import os
import socket
import subprocess

import pytest

from .conftest import (
    deploy,
    front,
    get,
    kill_home,
    listen_port,
    new,
    port_base,
    put_server,
    sarge,
    snapshot,
    start_supervisord,
    stop_supervisord,
    wait_for_state,
    wait_until,
)
from .faults import deploy_killed_at


def cut(path, keep=0.5):
    """Truncate a file as a power cut or a full disk could leave it."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])


def record(h, instance_id):
    with open(h.record_path(instance_id)) as f:
        data = json.load(f)
    data.pop("created")  # rebuilt from the folder's time, not the same second
    return data


def rows(h):
    return {r["id"]: r for r in json.loads(sarge(h, "list", "--json", check=True).stdout)[
        "instances"]}


def two_versions(h, webapp, port):
    """The app web, configured (GREETING=hi) and deployed twice: (previous, current)."""
    sarge(h, "config", "web", "GREETING=hi", check=True)
    first = deploy(h, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}",
                   check=True).stdout.strip()
    (webapp / "VERSION").write_text("2")
    return first, deploy(h, webapp, "--app", "web", check=True).stdout.strip()


@pytest.mark.heavy
def test_a_damaged_deployed_app_is_rebuilt_and_keeps_serving(running, webapp):
    h = running
    port = listen_port(50)
    first, second = two_versions(h, webapp, port)
    before = {i: record(h, i) for i in (first, second)}
    with open(h.app_state_path("web")) as f:
        state = json.load(f)
    for path in (h.record_path(first), h.record_path(second), h.app_state_path("web"),
                 h.app_config_path("web"), h.program_path(second)):
        cut(path)
    result = sarge(h, "list")
    assert result.returncode == 1 and "sarge HOME repair" in result.stderr

    untouched = snapshot(h.path)
    result = sarge(h, "repair", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("would fix:") == 5
    assert snapshot(h.path) == untouched

    result = sarge(h, "repair", "--json")
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert len(findings) == 5 and all(f["repaired"] and not f["manual"] for f in findings)
    assert {i: record(h, i) for i in (first, second)} == before
    with open(h.app_state_path("web")) as f:
        rebuilt = json.load(f)
    assert (rebuilt["listen"], rebuilt["current"], rebuilt["previous"]) == (
        state["listen"], second, [first])
    with open(h.app_config_path("web")) as f:
        assert json.load(f) == {"GREETING": "hi"}

    # everything works again: list, the serving version, a restart of supervisord, a
    # rollback to the rebuilt previous instance, another deploy
    listed = rows(h)
    assert (listed[second]["role"], listed[first]["role"]) == ("current", "previous")
    assert front(port) == (200, f"version 2 from {second}\n")
    assert sarge(h, "repair").stdout == ""  # nothing left to repair
    stop_supervisord(h)
    start_supervisord(h)
    # supervisord says RUNNING before gunicorn listens: wait for the app itself, and for
    # nginx to take connections, then ask through the front-end once
    wait_for_state(h, second, "running")
    assert get(h.get(second).port, timeout=30) == (200, f"version 2 from {second}\n")
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
               15, "nginx to take connections again", ignore=OSError)
    assert front(port) == (200, f"version 2 from {second}\n")
    sarge(h, "rollback", "web", check=True)
    assert front(port) == (200, f"version 1 from {first}\n")
    third = deploy(h, webapp, "--app", "web", check=True).stdout.strip()
    assert front(port) == (200, f"version 2 from {third}\n")


def test_supervisord_that_cannot_start_for_a_damaged_program_starts_after_repair(running):
    h = running
    instance_id = new(h)
    put_server(h, instance_id)
    sarge(h, "start", instance_id, check=True)
    kill_home(h)
    path = h.program_path(instance_id)
    with open(path, "rb") as f:  # ends in a section's header: supervisord refuses it all
        text = f.read()
    cut(path, (text.index(b"[program:") + 4) / len(text))
    result = sarge(h, "list")
    assert result.returncode == 0  # the record is sound; the program file is not read
    supervisord = os.path.join(h.path, "bin", "supervisord")
    assert subprocess.run([supervisord], capture_output=True).returncode != 0
    result = sarge(h, "repair")
    assert result.returncode == 0 and "repaired:" in result.stdout, result.stderr
    start_supervisord(h)
    # it was running when supervisord went down and is no app's current instance: a
    # program rebuilt without supervisord to ask starts stopped, to be started by hand
    wait_for_state(h, instance_id, "stopped")
    sarge(h, "start", instance_id, check=True)
    assert get(h.get(instance_id).port)[0] == 200


def test_what_cannot_be_identified_is_reported_and_kept(running):
    h = running
    lone = "web-AAAAAA"  # a record with nothing else of the instance left
    with open(h.record_path(lone), "w") as f:
        f.write('{"id": "web-AA')
    with open(os.path.join(h.path, "var", "instances", "not an id.json"), "w") as f:
        f.write("{}")
    os.mkdir(os.path.join(h.path, "web-BBBBBB"))  # a folder a killed `new` could leave
    os.mkdir(os.path.join(h.path, "web-CCCCCC"))  # ... and one with its port taken too
    os.symlink("web-CCCCCC", os.path.join(h.path, "var", "ports", str(port_base() + 150)))
    interrupted = new(h)  # a destroy interrupted after it removed the program
    os.unlink(h.program_path(interrupted))
    with open(h.app_config_path("web"), "w") as f:
        f.write("{")  # no deployed copy to restore it from
    with open(os.path.join(h.apps_dir, "Bad App.json"), "w") as f:
        f.write('{"name": "web"}')  # no app can have that name
    assert sarge(h, "repair", "--dry-run").stdout.count("needs you:") == 7
    before = snapshot(h.path)
    result = sarge(h, "repair")
    assert result.returncode == 1
    assert result.stderr.strip() == "sarge: 7 problem(s) need you (listed above)"
    assert result.stdout.count("needs you:") == 7
    assert f"sarge HOME destroy {interrupted}" in result.stdout
    for fragment in ("var/instances/web-AAAAAA.json", "not an id.json", "web-BBBBBB",
                     "web-CCCCCC", "etc/apps/web.json", "Bad App.json"):
        assert fragment in result.stdout
    assert snapshot(h.path) == before  # nothing removed, nothing invented


def test_missing_and_undecodable_files_and_a_half_made_instance(running, webapp):
    """A deploy killed half-way, then the app's state lost, a record not UTF-8 and the
    app's variables gone: the state is rebuilt with the half-made instance left out of the
    rollback targets, and the next deploy removes it."""
    h = running
    port = listen_port(51)
    first, second = two_versions(h, webapp, port)
    killed = deploy_killed_at(h, webapp, "web", "start")
    assert killed.returncode == -9
    (half,) = set(rows(h)) - {first, second}
    os.unlink(h.app_state_path("web"))
    os.unlink(h.app_config_path("web"))
    with open(h.record_path(first), "wb") as f:
        f.write(b'{"id": "\xff\xfe')

    result = sarge(h, "list")  # one line, no traceback
    assert result.returncode == 1 and "not UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = sarge(h, "repair")
    assert result.returncode == 0, result.stdout + result.stderr
    with open(h.app_state_path("web")) as f:
        state = json.load(f)
    assert (state["current"], state["previous"]) == (second, [first])
    with open(h.app_config_path("web")) as f:
        assert json.load(f) == {"GREETING": "hi"}
    assert record(h, first)["origin"] == "deploy"

    third = deploy(h, webapp, "--app", "web", check=True).stdout.strip()
    assert set(rows(h)) == {second, third} and not os.path.exists(h.instance_dir(half))
    assert front(port) == (200, f"version 2 from {third}\n")


def test_a_state_that_names_another_app_is_rebuilt(running):
    h = running
    with open(h.app_state_path("web"), "w") as f:
        f.write('{"name": "other"}')  # valid, but not web's
    result = sarge(h, "repair", "--dry-run")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "would fix: var/apps/web.json: damaged: it names the app 'other'" in result.stdout
