"""Hostile and bad input over every command that takes a name, an id or a value: each is
refused with one line on stderr, no traceback, nothing changed in the home, nothing
written outside it, and the serving version keeps serving."""

import json
import os
import re

import pytest

from .conftest import deploy, front, listen_port, sarge, snapshot
from .test_bad_input import BAD_IDS, BAD_NAMES

HOSTILE_NAMES = BAD_NAMES + ["web\x01", "web%", "web[", "web]", "a;b", " web", "web "]


@pytest.fixture
def serving(running, webapp, tmp_path):
    result = deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}")
    assert result.returncode == 0, result.stderr
    running.serving = result.stdout.strip()
    running.source = str(webapp)
    running.outside = tmp_path / "outside"
    running.outside.mkdir()
    return running


def quiet_snapshot(h):
    """The home, less what the running app and nginx change by themselves."""
    return {path: info for path, info in snapshot(h.path).items()
            if not path.startswith(("var/run/", "var/runtime/", "var/nginx/"))
            and not (path.startswith("var/log/") and path != "var/log/sarge.log")}


def refused(h, args, code=(2,)):
    before = quiet_snapshot(h)
    outside = sorted(os.listdir(h.outside))
    result = sarge(h, *args)
    assert result.returncode in code, (args, result.returncode, result.stdout)
    assert result.stdout == "", args
    assert result.stderr.startswith("sarge: ") and result.stderr.count("\n") == 1, (args,
                                                                                   result.stderr)
    assert "Traceback" not in result.stderr
    assert quiet_snapshot(h) == before, args
    assert sorted(os.listdir(h.outside)) == outside
    return result.stderr


def still_serving(h):
    assert front(listen_port()) == (200, f"version 1 from {h.serving}\n")


def commands_with_a_name(h, name):
    return [["deploy", h.source, "--app", name], ["rollback", name], ["route", name, h.serving],
            ["config", name], ["config", name, "A=1"], ["config", name, "--unset", "A"]]


def test_hostile_app_names_everywhere(serving):
    for name in HOSTILE_NAMES:
        if "\x00" in name:
            continue  # no process can receive a NUL in its arguments
        for args in commands_with_a_name(serving, name):
            message = refused(serving, args)
            # a name starting with "-" is taken for an option: refused all the same
            assert "invalid application name" in message or "No such option" in message, (
                args, message)
    still_serving(serving)


def test_hostile_ids_everywhere(serving):
    for instance_id in BAD_IDS + ["web-zzzzzz", "../" + serving.serving,
                                     serving.serving + "/..", "%(here)s"]:
        if "\x00" in instance_id:
            continue
        missing = instance_id == "web-zzzzzz"  # well formed: not found (1), not a usage error
        refused(serving, ["route", "web", instance_id], (1,) if missing else (2,))
    still_serving(serving)


@pytest.mark.parametrize("assignment", ["1A=x", "A-B=x", "A B=x", "=x", "é=x", "A", "A\n=x",
                                        "A=line\nbreak", "A=cr\rx", "A.B=x", "A;B=x"])
def test_hostile_config_assignments(serving, assignment):
    message = refused(serving, ["config", "web", assignment])
    assert "invalid" in message or "not KEY=VALUE" in message
    key = assignment.partition("=")[0]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        refused(serving, ["config", "web", "--unset", key, "--deploy"])
    still_serving(serving)


@pytest.mark.parametrize("listen", ["", ":", "80:", "host:port", "127.0.0.1:0", "1.2.3.4:-1",
                                    "[::1:80", "a b:80", "x;y:80", "127.0.0.1:80 ssl",
                                    f"127.0.0.1:{'9' * 20}", "é:80"])
def test_hostile_listen_values(serving, listen):
    assert "invalid --listen" in refused(serving, ["deploy", serving.source, "--app", "web",
                                                   "--listen", listen])
    still_serving(serving)


@pytest.mark.parametrize("check", ["", "health", "/a b", "/x\ny", "/é", "http://evil/",
                                   "/x;\n", "/" + "a" * 1001, "/{x}"])
def test_hostile_check_values(serving, check):
    assert "invalid --check" in refused(serving, ["deploy", serving.source, "--app", "web",
                                                  "--check", check])
    still_serving(serving)


@pytest.mark.parametrize("procfile", [
    "web gunicorn\n", "worker: sleep 1\n", "web:\n", "WEB: x\n", "web: a\nweb: b\n",
    "\x00: x\nweb: y\n", "web: ok\n[program:evil]\ncommand=/bin/sh\n",
    "web: ok\n%(here)s: x\n",
])
def test_garbage_procfiles_are_refused_and_nothing_is_left(serving, webapp, procfile):
    (webapp / "Procfile").write_text(procfile)
    result = deploy(serving, webapp, "--app", "web")
    assert result.returncode == 1
    assert "deploy failed at step 'environment'" in result.stderr
    assert "Traceback" not in result.stderr
    rows = json.loads(sarge(serving, "list", "--json").stdout)["instances"]
    assert [r["id"] for r in rows] == [serving.serving]
    still_serving(serving)
