"""The home folder: init, its layout, its shortcuts, and refusing what is not a home."""

import configparser
import os
import stat
import subprocess
import sys

import pytest

from sarge import users
from sarge.errors import HomeError
from sarge.home import Home

from .conftest import (
    kill_home,
    put_server,
    python_for,
    rpc,
    run_main,
    sarge,
    snapshot,
    start_supervisord,
)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_the_layout(tmp_path):
    h = Home(tmp_path / "home")
    changed = h.init()
    assert h.settings_path in changed
    for folder in ["etc/supervisor.d", "etc/apps", "var/log", "var/run", "var/data",
                   "var/instances", "var/ports", "bin"]:
        assert os.path.isdir(os.path.join(h.path, folder)), folder
    assert mode(os.path.join(h.path, "var/run")) == 0o700
    assert mode(os.path.join(h.path, "var/runtime")) == 0o711  # entered, never listed
    assert mode(os.path.join(h.path, "var/log")) == 0o750  # an app's log can hold secrets
    assert mode(os.path.join(h.path, "etc/apps")) == 0o700
    for name in ["sarge", "supervisord", "supervisorctl"]:
        assert os.access(os.path.join(h.path, "bin", name), os.X_OK)
    # supervisord.conf parses back to the home's own paths
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"))
    parser.read(h.supervisord_conf)
    assert parser["supervisord"]["pidfile"] == os.path.join(h.path, "var/run/supervisord.pid")
    assert parser["unix_http_server"]["file"] == h.socket_path
    assert parser["unix_http_server"]["chmod"] == "0700"
    assert parser["include"]["files"] == "supervisor.d/*.conf"
    with open(h.settings_path) as f:
        assert "first = 5000" in f.read()


def test_init_again_changes_nothing_and_keeps_edits(tmp_path):
    h = Home(tmp_path / "home")
    h.init()
    with open(h.settings_path, "a") as f:
        f.write("\n# my edit\n")
    before = snapshot(h.path)
    result = subprocess.run([os.path.join(h.path, "bin", "sarge"), "init"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "nothing changed" in result.stderr
    assert snapshot(h.path) == before


def test_init_completes_a_damaged_home(tmp_path):
    h = Home(tmp_path / "home")
    h.init()
    os.unlink(os.path.join(h.path, "bin", "supervisorctl"))
    os.rmdir(os.path.join(h.path, "var", "data"))
    changed = h.init()
    assert sorted(os.path.relpath(p, h.path) for p in changed) == ["bin/supervisorctl", "var/data"]


def test_init_refuses_a_folder_that_is_not_a_home(tmp_path):
    (tmp_path / "mine.txt").write_text("mine")
    with pytest.raises(HomeError, match="not empty and not a sarge home"):
        Home(tmp_path).init()
    assert os.listdir(tmp_path) == ["mine.txt"]


def test_init_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(HomeError, match="not a folder"):
        Home(tmp_path / "f").init()


def test_init_refuses_a_path_too_long_for_the_socket(tmp_path):
    deep = tmp_path / ("x" * 100)
    with pytest.raises(HomeError, match="too long"):
        Home(deep).init()
    assert not deep.exists()


@pytest.mark.parametrize("command", [["list"], ["new", '{"application_name": "web"}'],
                                      ["start", "web-abcdef"], ["status"], ["logs", "web-abcdef"]])
def test_commands_refuse_a_folder_that_is_not_a_home(tmp_path, command):
    import sys

    folder = tmp_path / "nothome"
    result = subprocess.run([sys.executable, "-m", "sarge", str(folder), *command],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "sarge " + str(folder) + " init" in result.stderr
    assert not folder.exists()


def test_bin_sarge_works_from_any_directory(home, tmp_path):
    result = subprocess.run([os.path.join(home.path, "bin", "sarge"), "list", "--json"],
                            capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert '"instances": []' in result.stdout


def test_supervisord_runs_from_the_home_with_a_private_socket(home):
    start_supervisord(home)
    try:
        assert mode(home.socket_path) == 0o700
        with open(home.pidfile) as f:
            assert int(f.read()) == rpc(home).supervisor.getPID()
        result = subprocess.run([os.path.join(home.path, "bin", "supervisorctl"), "pid"],
                                capture_output=True, text=True)
        assert result.stdout.strip() == open(home.pidfile).read().strip()
    finally:
        kill_home(home)


def test_without_supervisord_commands_say_how_to_start_it(home):
    """In this process (sarge.cli.main with the real Home and supervisord client): what
    is tested is what the client says when nothing answers on the socket."""
    code, out, err = run_main([home.path, "new", '{"application_name": "web"}'])
    assert code == 0, err
    instance_id = out.strip()
    put_server(home, instance_id)
    before = snapshot(home.path)
    for command in (["start", instance_id], ["stop", instance_id], ["status"],
                    ["destroy", instance_id]):
        code, out, err = run_main([home.path, *command])
        assert code == 7 and out == "", command  # as supervisorctl's
        assert "supervisord is not running" in err
        assert os.path.join(home.path, "bin", "supervisord") in err
        assert err.count("\n") == 1
    assert snapshot(home.path) == before
    code, out, err = run_main([home.path, "list"])
    assert code == 0 and "supervisord is not running; states are unknown" in err
    assert "unknown" in out
    # the instance made while supervisord was down is known once it starts
    start_supervisord(home)
    try:
        assert sarge(home, "list").stdout.split("\n")[1].split()[3] == "stopped"
    finally:
        kill_home(home)


class DyingSupervisord:
    """A unix socket where supervisord's was, as it is while supervisord is killed: the
    connections made meanwhile are reset (closed with the request unread), then the
    socket is gone."""

    def __init__(self, path, resets=2):
        import socket
        import threading

        self.path = path
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen()
        self.thread = threading.Thread(target=self.serve, args=(resets,), daemon=True)
        self.thread.start()

    def serve(self, resets):
        import select
        import time

        for _ in range(resets):
            conn, _ = self.listener.accept()
            select.select([conn], [], [], 5)  # the request comes: it is never read
            time.sleep(0.1)
            conn.close()  # the client's read: reset by peer (its write, if slower: EPIPE)
        self.listener.close()
        os.unlink(self.path)


@pytest.mark.fast
# It said "cannot talk to supervisord ...: Connection reset by peer" (a reset retried once).
def test_a_supervisord_killed_while_a_command_talks_to_it_is_not_running(home):
    DyingSupervisord(home.socket_path)
    code, out, err = run_main([home.path, "list"])
    assert (code, out) == (0, "ID  APP  PORT  STATE  ROLE  CREATED  REVISION\n"), (code, out, err)
    assert "supervisord is not running; states are unknown" in err


def test_a_world_writable_home_is_refused(home):
    os.chmod(home.path, 0o777)
    try:
        for args in (["list"], ["init"], ["new", '{"application_name": "web"}']):
            result = sarge(home, *args)
            assert result.returncode == 1
            assert "writable by every user" in result.stderr
            assert f"chmod o-w {home.path}" in result.stderr
        assert os.listdir(os.path.join(home.path, "var", "instances")) == []
    finally:
        os.chmod(home.path, 0o755)


def test_init_user_names_the_apps_user(tmp_path):
    cli = [sys.executable, "-m", "sarge", str(tmp_path / "h")]
    result = subprocess.run(cli + ["init", "--user", "no-such-user-here"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "no user 'no-such-user-here'" in result.stderr
    assert not os.path.exists(tmp_path / "h")  # nothing made
    # daemon must be able to run the apps' Python: this one may be in root's private home
    python = python_for(users.lookup("daemon"))
    subprocess.run(cli + ["init", "--user", "daemon", "--python", python], check=True,
                   capture_output=True)
    assert Home(tmp_path / "h").settings.user == "daemon"
    subprocess.run(cli + ["init", "--user", "daemon"], check=True, capture_output=True)
    result = subprocess.run(cli + ["init", "--user", "root"], capture_output=True, text=True)
    assert result.returncode == 1 and "edit [users] default" in result.stderr
    assert Home(tmp_path / "h").settings.user == "daemon"
