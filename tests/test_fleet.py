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

from .conftest import (OFFLINE, WEBAPP, front, kill_home, listen_port, make_home,
                       needs_wheels, port_base, start_supervisord, wait_until)
from .sshd import FakeHost, keygen, needs_sshd, write_fleet
from .test_deploy import Load

pytestmark = pytest.mark.xdist_group("fleet")

FLEET = [sys.executable, "-m", "sarge.fleet"]


def fleet(path, *args, timeout=300):
    """``sarge-fleet -f PATH ARGS``: the CompletedProcess (text)."""
    return subprocess.run([*FLEET, "-f", str(path), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def listing(h):
    result = subprocess.run([os.path.join(h.path, "bin", "sarge"), "list", "--json"],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["instances"]


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
