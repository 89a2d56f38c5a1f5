"""Redis: ``redis-server`` with its configuration file (AOF on, a password, bound to
127.0.0.1 on the service's port, data in ``var/data/APP/redis``), and a backup that
is the RDB a ``BGSAVE`` writes: one consistent point in time, whatever is written
meanwhile.

The few requests sarge makes (``AUTH``, ``PING``, ``INFO``, ``BGSAVE``) speak
Redis's protocol (RESP) over a socket: no client library in sarge.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time

from ..errors import ServiceError
from ..render import render
from .kind import Kind, version_output


class Redis(Kind):
    name = "redis"
    package = "redis-server"
    executables = {"server": "redis-server"}
    rank = 1
    backup_format = "an RDB file (redis-server reads it as its dump.rdb)"

    def version(self, which=shutil.which) -> str:
        line = version_output([self.executable("server", which), "--version"])
        match = re.search(r"v=(\d[\w.]*)", line)
        return match.group(1) if match else line

    def config(self, layout, service) -> str:
        data_dir = layout.service_data_dir(service.app, service.kind)
        if any(c in data_dir for c in '"\\\n\r'):
            raise ServiceError(f"{data_dir} cannot be written into redis's configuration "
                               "(quotes, backslashes, line breaks); use a home path without")
        return render("redis.conf.j2", port=service.port, password=service.password,
                      data_dir=data_dir)

    def argv(self, layout, service, program, user_name, which=shutil.which) -> list:
        return [self.executable("server", which), layout.service_config_path(service.id)]

    def variables(self, service) -> dict:
        base = f"redis://:{service.password}@127.0.0.1:{service.port}"
        # the broker in a database of its own: a cache's FLUSHDB never drops queued tasks
        return {"REDIS_URL": f"{base}/0", "CELERY_BROKER_URL": f"{base}/1"}

    def answers(self, service) -> bool:
        try:
            return ask(service.port, service.password, ["PING"]) == ["PONG"]
        except (OSError, ServiceError):
            return False

    def backup(self, layout, service, user, which=shutil.which, timeout=300) -> bytes:
        """``BGSAVE``, wait until it has finished (``rdb_saves`` grew), then the RDB."""
        before = info(service)
        reply = ask(service.port, service.password, ["BGSAVE", "SCHEDULE"])[0]
        if isinstance(reply, ServiceError):
            raise reply
        deadline = time.monotonic() + timeout
        while True:
            now = info(service)
            if now.get("rdb_bgsave_in_progress") == "0" and (
                    int(now.get("rdb_saves", 0)) > int(before.get("rdb_saves", 0))
                    or now.get("rdb_last_save_time") != before.get("rdb_last_save_time")):
                break
            if time.monotonic() > deadline:
                raise ServiceError(f"{service.id}: BGSAVE did not finish within {timeout}s; "
                                   "its log says why")
            time.sleep(0.05)
        if now.get("rdb_last_bgsave_status") != "ok":
            raise ServiceError(f"{service.id}: BGSAVE failed (rdb_last_bgsave_status "
                               f"{now.get('rdb_last_bgsave_status')}); its log says why")
        path = os.path.join(layout.service_data_dir(service.app, service.kind), "dump.rdb")
        # the app's user owns that folder: never follow a link it put there
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return f.read()


def info(service) -> dict:
    """``INFO persistence`` as a dict."""
    text = ask(service.port, service.password, ["INFO", "persistence"])[0]
    if isinstance(text, ServiceError):
        raise text
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def ask(port: int, password: str, *commands, timeout: float = 5.0) -> list:
    """Send ``AUTH`` then each command (a list of words); the replies of the commands (an
    error reply as a :class:`ServiceError` value). :class:`ServiceError` when the
    password is refused, OSError when nothing answers."""
    words = [["AUTH", password], *commands]
    message = b"".join(
        b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode())
                                        for w in c) for c in words)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(message)
        reader = conn.makefile("rb")
        replies = [_reply(reader) for _ in words]
    if isinstance(replies[0], ServiceError):
        raise ServiceError(f"redis on port {port} refused sarge's password: {replies[0]}")
    return replies[1:]


def _reply(reader):
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        return ServiceError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        return [_reply(reader) for _ in range(max(int(rest), 0))]
    raise OSError(f"not a redis reply: {line[:40]!r}")
