"""One host over SSH, through Fabric: its home's ``bin/sarge``, files put over SFTP.

Fabric accepts any host key by default; a :class:`Remote` does not: it knows the keys
of ``~/.ssh/known_hosts`` and of the fleet file's ``[ssh] known_hosts``, and refuses
a host whose key is in neither, unless ``[ssh] accept_unknown_hosts = true``.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import shlex
import socket

from ..errors import FleetError, FleetFileError, HostUnreachable


@dataclasses.dataclass
class Answer:
    """What a command on the host did: its exit status and output."""

    exited: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exited == 0

    def reason(self) -> str:
        """sarge's own one-line error (its last ``sarge: ...`` line on stderr: the app's
        log lines may follow it), else the last line."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        errors = [line[len("sarge: "):] for line in lines if line.startswith("sarge: ")]
        return errors[-1] if errors else lines[-1] if lines else f"exit status {self.exited}"


class Lines:
    """A stream Fabric writes a command's stderr to, calling ``line(text)`` for each
    complete line as it comes."""

    def __init__(self, line):
        self.line, self.buffer = line, ""

    def write(self, text):
        self.buffer += text
        *done, self.buffer = self.buffer.split("\n")
        for line in done:
            self.line(line.rstrip("\r"))

    def flush(self):
        pass

    def close(self):
        if self.buffer:
            self.line(self.buffer)
            self.buffer = ""


def connect(host, ssh):
    """A Fabric :class:`~fabric.Connection` to ``host`` with the fleet's SSH options."""
    try:
        from fabric import Connection
    except ModuleNotFoundError:
        raise FleetError("sarge-fleet needs Fabric: pip install 'sarge-deploy[fleet]'") from None

    def connection(user, hostname, port, gateway=None):
        kwargs = {"key_filename": [ssh.identity], "look_for_keys": False} if ssh.identity \
            else {}
        conn = Connection(hostname, user=user, port=port, gateway=gateway,
                          connect_timeout=ssh.connect_timeout, connect_kwargs=kwargs)
        _trust(conn.client, ssh)
        return conn

    gateway = None
    if ssh.gateway:
        from .fleetfile import parse_address

        gateway = connection(*parse_address(ssh.gateway))
    return connection(host.user, host.hostname, host.port, gateway)


def _trust(client, ssh) -> None:
    import paramiko

    client.load_system_host_keys()
    if ssh.known_hosts:
        try:
            client.load_host_keys(ssh.known_hosts)
        except OSError as exc:
            raise FleetFileError(f"cannot read [ssh] known_hosts {ssh.known_hosts}: "
                                 f"{exc.strerror}; make it with ssh-keyscan") from exc
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy() if ssh.accept_unknown_hosts
                                       else paramiko.RejectPolicy())


class Remote:
    """The home of ``host``, reached with ``connect(host, ssh)`` (Fabric by default)."""

    def __init__(self, host, ssh, connect=connect):
        self.host = host
        self._connect, self._ssh = connect, ssh
        self._conn = None

    @property
    def sarge_path(self) -> str:
        return posixpath.join(self.host.home, "bin", "sarge")

    def sarge(self, *args, line=None, timeout=None) -> Answer:
        """Run ``HOME/bin/sarge ARGS`` on the host; ``line(text)`` gets each line of its
        stderr as it comes."""
        return self.run(shlex.join([self.sarge_path, *map(str, args)]), line=line,
                        timeout=timeout)

    def sarge_json(self, *args) -> dict:
        """``bin/sarge ARGS`` (with ``--json``), its answer read; a failure is raised."""
        answer = self.sarge(*args)
        if not answer.ok:
            raise HostUnreachable(f"{self.host.name}: `sarge {' '.join(map(str, args))}` "
                                  f"failed: {answer.reason()}")
        try:
            return json.loads(answer.stdout)
        except ValueError:
            raise HostUnreachable(f"{self.host.name}: {self.sarge_path} did not answer JSON: "
                                  "is sarge installed in that home?") from None

    def run(self, command: str, line=None, timeout=None) -> Answer:
        """Run the shell ``command`` on the host (no stdin)."""
        stream = Lines(line) if line else None
        conn = self.connection()
        try:
            result = conn.run(command, hide="out" if stream else True, warn=True,
                              in_stream=False, err_stream=stream, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - paramiko's, socket's, invoke's: one error
            raise self._unreachable(exc) from exc
        finally:
            if stream:
                stream.close()
        return Answer(result.exited, result.stdout, result.stderr)

    def put(self, local: str, remote: str, mode: int = 0o600) -> None:
        """Copy ``local`` to ``remote`` over SFTP, ``mode`` set before a byte is written."""
        sftp = self._sftp()
        try:
            with open(local, "rb") as src, sftp.open(remote, "wb") as dst:
                dst.chmod(mode)
                dst.set_pipelined(True)
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        except OSError as exc:
            raise FleetError(f"{self.host.name}: cannot write {remote}: "
                             f"{exc.strerror or exc}") from exc

    def makedirs(self, path: str, mode: int = 0o700) -> None:
        """Make the folder ``path`` (its parent exists) unless it is there, over SFTP."""
        sftp = self._sftp()
        try:
            sftp.stat(path)
        except OSError:
            try:
                sftp.mkdir(path, mode)
            except OSError as exc:
                raise FleetError(f"{self.host.name}: cannot make {path}: "
                                 f"{exc.strerror or exc}") from exc

    def remove(self, path: str) -> None:
        try:
            self._sftp().remove(path)
        except OSError:
            pass  # gone already

    def connection(self):
        if self._conn is None:
            conn = self._connect(self.host, self._ssh)
            try:
                conn.open()
            except Exception as exc:  # noqa: BLE001 - see run
                conn.close()
                raise self._unreachable(exc) from exc
            self._conn = conn
        return self._conn

    def _sftp(self):
        try:
            return self.connection().sftp()
        except HostUnreachable:
            raise
        except Exception as exc:  # noqa: BLE001 - see run
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc) -> FleetError:
        if isinstance(exc, FleetError):
            return exc
        what = str(exc) or type(exc).__name__
        if isinstance(exc, socket.timeout) or type(exc).__name__ == "CommandTimedOut":
            what = f"timed out ({what})"
        if "not found in known_hosts" in what:
            return HostUnreachable(
                f"{self.host.name}: the host key of {self.host.hostname}:{self.host.port} is "
                f"not known: add it to [ssh] known_hosts (ssh-keyscan -p {self.host.port} "
                f"{self.host.hostname})")
        return HostUnreachable(f"{self.host.name}: cannot reach {self.host.address} over SSH: "
                               f"{' '.join(what.split())}; check that sshd runs there and "
                               "the fleet file's [ssh]")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
