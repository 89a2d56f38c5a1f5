"""Hostile and bad input over every command that takes a name, an id or a value: each is
refused with one line on stderr, no traceback, nothing changed in the home, nothing
written outside it, and the serving version keeps serving.

The tables run in this process on one home for the module, with a fake supervisord and
an app deployed by the fast tier's fakes (:mod:`tests.fakes`); every case is compared
with that home's snapshot as the module left it, so a case that changed something
fails, and so does every case after it (nothing leaks on unnoticed). One test per
command runs the real ``bin/sarge`` on a home with a real supervisord, nginx and a
deployed app, also made once for the module.
"""

import json
import os
import re
import shutil

import pytest

from sarge.errors import DeployError

from .conftest import (
    WEBAPP,
    front,
    get,
    invoke,
    kill_home,
    listen_port,
    make_home,
    port_base,
    quiet_snapshot,
    refused_in_process,
    sarge,
    snapshot,
    start_supervisord,
    state_files,
)
from .fakes import Rig
from .test_bad_input import BAD_IDS, BAD_NAMES

HOSTILE_NAMES = BAD_NAMES + ["web\x01", "web%", "web[", "web]", "a;b", " web", "web "]
LISTEN = f"127.0.0.1:{port_base() + 992}"  # the fake front-end never binds it

ASSIGNMENTS = ["1A=x", "A-B=x", "A B=x", "=x", "é=x", "A", "A\n=x", "A=line\nbreak",
               "A=cr\rx", "A.B=x", "A;B=x"]
LISTENS = ["", ":", "80:", "host:port", "127.0.0.1:0", "1.2.3.4:-1", "[::1:80", "a b:80",
           "x;y:80", "127.0.0.1:80 ssl", f"127.0.0.1:{'9' * 20}", "é:80"]
CHECKS = ["", "health", "/a b", "/x\ny", "/é", "http://evil/", "/x;\n", "/" + "a" * 1001,
          "/{x}"]


def fast_source(path):
    path.mkdir()
    (path / "Procfile").write_text("web: serve --port $PORT\n")
    (path / "VERSION").write_text("1")
    return path


def commands_with_a_name(source, serving, name):
    return [["deploy", source, "--app", name], ["rollback", name], ["route", name, serving],
            ["config", name], ["config", name, "A=1"], ["config", name, "--unset", "A"],
            ["undeploy", name, "--data", "--yes"]]


def hostile_ids(serving):
    return BAD_IDS + ["web-zzzzzz", "../" + serving, serving + "/..", "%(here)s"]


# -- the tables, in this process ------------------------------------------------------

@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    """The module's home (fake supervisord) serving the app web, deployed once."""
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    try:
        source = fast_source(tmp_path_factory.mktemp("src") / "web")
        rig.serving = rig.deployer().deploy(str(source), "web", listen=LISTEN).id
        rig.source = str(source)
        rig.outside = tmp_path_factory.mktemp("outside")
        rig.before = snapshot(rig.home.path)
        yield rig
    finally:
        rig.close()


def refused(rig, *args):
    """Refused in one line; the home as the module left it; nothing written outside;
    the app still serving."""
    message = refused_in_process(rig.home, *args)
    assert snapshot(rig.home.path) == rig.before, args
    assert os.listdir(rig.outside) == []
    assert get(rig.home.get(rig.serving).port) == (200, f"version 1 from {rig.serving}\n")
    return message


@pytest.mark.fast
def test_hostile_app_names_everywhere(serving):
    for name in HOSTILE_NAMES:
        for args in commands_with_a_name(serving.source, serving.serving, name):
            if name.startswith("-") and "--app" not in args:
                # taken for an option: click's usage error (exit status 2), no more
                result = invoke(serving.home, *args)
                assert result.exit_code == 2 and "No such option" in result.stderr, args
                assert result.stdout == "" and snapshot(serving.home.path) == serving.before
                continue
            assert "invalid application name" in refused(serving, *args), args


@pytest.mark.fast
def test_hostile_ids_everywhere(serving):
    for instance_id in hostile_ids(serving.serving):
        message = refused(serving, "route", "web", instance_id)
        assert "invalid instance id" in message or "no instance" in message, message


@pytest.mark.fast
def test_hostile_config_assignments(serving):
    for assignment in ASSIGNMENTS:
        message = refused(serving, "config", "web", assignment)
        assert "invalid" in message or "not KEY=VALUE" in message, message
        key = assignment.partition("=")[0]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            message = refused(serving, "config", "web", "--unset", key, "--deploy")
            assert "invalid variable name" in message, message


@pytest.mark.fast
def test_hostile_listen_values(serving):
    for listen in LISTENS:
        message = refused(serving, "deploy", serving.source, "--app", "web", "--listen", listen)
        assert "invalid --listen" in message, (listen, message)


@pytest.mark.fast
def test_hostile_check_values(serving):
    for check in CHECKS:
        message = refused(serving, "deploy", serving.source, "--app", "web", "--check", check)
        assert "invalid --check" in message, (check, message)


@pytest.fixture
def deployed(tmp_path_factory):
    """A home of its own (fake supervisord) serving web: a refused deploy makes and
    removes an instance, which the module's home must not see."""
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    source = fast_source(tmp_path_factory.mktemp("src") / "web")
    rig.serving = rig.deployer().deploy(str(source), "web", listen=LISTEN).id
    rig.source = source
    yield rig
    rig.close()


@pytest.mark.fast
@pytest.mark.parametrize("procfile", [
    "web gunicorn\n", "worker: sleep 1\n", "web:\n", "WEB: x\n", "web: a\nweb: b\n",
    "\x00: x\nweb: y\n", "web: ok\n[program:evil]\ncommand=/bin/sh\n",
    "web: ok\n%(here)s: x\n",
])
def test_garbage_procfiles_are_refused_and_nothing_is_left(deployed, procfile):
    (deployed.source / "Procfile").write_text(procfile)
    before = state_files(deployed.home)
    result = invoke(deployed.home, "deploy", deployed.source, "--app", "web")
    assert isinstance(result.exception, DeployError), result.exception
    assert "deploy failed at step 'environment'" in str(result.exception)
    assert [i.id for i in deployed.home.instances()] == [deployed.serving]
    assert state_files(deployed.home) == before
    assert deployed.supervisor.groups() == [deployed.serving]
    assert get(deployed.home.get(deployed.serving).port)[0] == 200


# -- one test per command with the real bin/sarge, supervisord and nginx ------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The module's home with a real supervisord and nginx, serving tests/apps/webapp
    (deployed once); ``real.before``: its quiet snapshot."""
    h = make_home(tmp_path_factory.mktemp("h") / "home", offset=200)
    start_supervisord(h)
    try:
        source = tmp_path_factory.mktemp("src") / "webapp"
        shutil.copytree(WEBAPP, source)
        result = sarge(h, "deploy", source, "--app", "web", "--listen",
                       f"127.0.0.1:{listen_port(20)}", timeout=300)
        assert result.returncode == 0, result.stderr
        h.serving, h.source = result.stdout.strip(), str(source)
        h.outside = tmp_path_factory.mktemp("outside")
        h.before = quiet_snapshot(h)
        yield h
    finally:
        kill_home(h)


REAL_CASES = {
    "deploy": [["deploy", "{source}", "--app", "../etc"],
               ["deploy", "{source}", "--app", "web", "--listen", "x;y:80"],
               ["deploy", "{source}", "--app", "web", "--check", "/x;\n"]],
    "rollback": [["rollback", "web%(here)s"], ["rollback", "we/b"]],
    "undeploy": [["undeploy", "../etc", "--data", "--yes"], ["undeploy", "web%(here)s"]],
    "route": [["route", "web", "../{serving}"], ["route", "web;x", "{serving}"]],
    "config": [["config", "web", "A=line\nbreak"], ["config", "../etc", "A=1"],
               ["config", "web", "--unset", "A;B", "--deploy"]],
}


@pytest.mark.xdist_group("hostile_real")
@pytest.mark.parametrize("command", sorted(REAL_CASES))
def test_the_real_command_line_refuses_hostile_input(real, command):
    for case in REAL_CASES[command]:
        args = [a.format(source=real.source, serving=real.serving) for a in case]
        result = sarge(real, *args)
        # a usage error (2), or a well-formed id that names no instance (1)
        assert result.returncode in (1, 2), (args, result.returncode, result.stdout)
        assert result.stdout == "", args
        assert result.stderr.startswith("sarge: ") and result.stderr.count("\n") == 1, (
            args, result.stderr)
        assert "Traceback" not in result.stderr
        assert quiet_snapshot(real) == real.before, args  # the module's: nothing leaks on
        assert os.listdir(real.outside) == []
        assert front(listen_port(20)) == (200, f"version 1 from {real.serving}\n")
    rows = json.loads(sarge(real, "list", "--json", check=True).stdout)["instances"]
    assert [r["id"] for r in rows] == [real.serving]
