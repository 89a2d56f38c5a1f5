"""Fake hosts for the fleet's tests: a real OpenSSH server (``sshd -D``) per host, on
127.0.0.1 at a port of the test's own, with host and client keys made by ssh-keygen
in a temporary folder, and the fleet file that names them."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from .conftest import wait_until

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def needs_sshd():
    if not os.path.exists(SSHD) or not os.path.exists(SFTP_SERVER) \
            or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed (scripts/setup installs it)")
    pytest.importorskip("fabric", reason="sarge-fleet needs Fabric: pip install -e '.[test]'")


def keygen(path) -> str:
    """An ed25519 key pair at ``path`` (and ``path``.pub); the public key's text."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sarge-test",
                    "-f", str(path)], check=True, capture_output=True)
    with open(f"{path}.pub") as f:
        return f.read().strip()


class FakeHost:
    """An sshd of its own on 127.0.0.1:``port``, letting in the holder of ``client_key``
    as the user running the tests; ``home`` is the sarge home it stands for."""

    def __init__(self, folder, name, port, home, client_public):
        self.folder, self.name, self.port, self.home = str(folder), name, port, str(home)
        os.makedirs(self.folder, exist_ok=True)
        self.host_public = keygen(os.path.join(self.folder, "host_key"))
        with open(os.path.join(self.folder, "authorized_keys"), "w") as f:
            f.write(client_public + "\n")
        # Every command that reaches the host, logged before it runs (what a test can
        # check never held a secret); the SFTP server is one of them.
        self.commands_log = os.path.join(self.folder, "commands.log")
        wrapper = os.path.join(self.folder, "logged-command")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\nprintf "%s\\n" "$SSH_ORIGINAL_COMMAND" >> {self.commands_log}\n'
                    'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n')
        os.chmod(wrapper, 0o755)
        self.config = os.path.join(self.folder, "sshd_config")
        with open(self.config, "w") as f:
            f.write("\n".join([
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {self.folder}/host_key",
                f"PidFile {self.folder}/sshd.pid",
                f"AuthorizedKeysFile {self.folder}/authorized_keys",
                "PubkeyAuthentication yes", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "PermitRootLogin prohibit-password", f"ForceCommand {wrapper}",
                f"Subsystem sftp {SFTP_SERVER}",
                "MaxSessions 50", "MaxStartups 50", "LogLevel ERROR",
                # bash, the login shell here, reads ~/.bashrc before a command sshd runs
                # unless it is a shell's child (SHLVL set): this machine's root's starts
                # pyenv, 120 ms each of the fleet's commands, which name sarge's paths
                "SetEnv SHLVL=1", ""]))
        self.proc = None

    def start(self):
        if os.geteuid() == 0:  # sshd's privilege separation folder, made by its service
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.started_at = time.time()
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.folder, "sshd.log"), "ab"))
        wait_until(lambda: self.proc.poll() is not None or _listens(self.port), 10,
                   f"sshd on port {self.port}")
        assert self.proc.poll() is None, open(os.path.join(self.folder, "sshd.log")).read()
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def commands(self) -> list:
        """Every command line the host was given so far."""
        try:
            with open(self.commands_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {' '.join(self.host_public.split()[:2])}"


def _listens(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def write_fleet(folder, hosts, identity, rollout="", extra="", user=None):
    """``fleet.toml`` (and its ``known_hosts``) in ``folder`` for ``hosts``, reached as
    ``user`` (default: the one running the tests): its path."""
    folder = str(folder)
    with open(os.path.join(folder, "known_hosts"), "w") as f:
        f.write("".join(h.known_hosts_line() + "\n" for h in hosts))
    lines = ["[ssh]", f"identity = {json.dumps(str(identity))}", 'known_hosts = "known_hosts"',
             "connect_timeout = 30", "", "[rollout]", rollout, "", extra]
    for h in hosts:
        lines += ["[[hosts]]", f'address = "{user or getpass.getuser()}@127.0.0.1:{h.port}"',
                  f"home = {json.dumps(h.home)}", f'name = "{h.name}"',
                  'roles = ["web"]', ""]
    path = os.path.join(folder, "fleet.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
