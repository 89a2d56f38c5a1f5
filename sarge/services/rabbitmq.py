"""RabbitMQ: ``rabbitmq-server`` with a node of its own per service, the app's own
virtual host and user (named after the app, its password the service's), AMQP on the
service's port of 127.0.0.1, and a backup that is its definitions export.

Several nodes on one machine each need their own Erlang port mapper, node name and
distribution port, and their own cookie: each service's group runs its own ``epmd``
(on a port of the home's range, bound to 127.0.0.1) before the server, whose node is
``sarge-APP@localhost``, whose distribution port is another of the range, and whose
``HOME`` (where Erlang keeps the cookie), database and logs are in the service's data
folder. ``rabbitmqctl`` reaches it with the same variables, as the app's user.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess

from ..errors import ServiceError
from ..render import render
from .kind import Kind, exchange

#: AMQP 0-9-1's protocol header: a server answers it with its Connection.Start frame.
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class RabbitMQ(Kind):
    name = "rabbitmq"
    package = "rabbitmq-server"
    executables = {"server": "rabbitmq-server", "epmd": "epmd", "ctl": "rabbitmqctl"}
    programs = ("epmd", "server")
    roles = ("main", "dist", "epmd")
    rank = 3
    backup_format = "its definitions, as JSON (rabbitmqctl import_definitions reads it)"

    def executable(self, program, which=shutil.which) -> str:
        path = super().executable(program, which)
        if path.startswith("/usr/sbin/"):  # Debian's wrapper, which only root or rabbitmq run
            raise ServiceError(f"{path} is Debian's wrapper, not the server: sarge runs "
                               "/usr/lib/rabbitmq/bin's; reinstall rabbitmq-server")
        return path

    def version(self, which=shutil.which) -> str:
        path = os.path.realpath(self.executable("server", which))
        match = re.search(r"rabbitmq_server-(\d[\w.]*)", path)
        return match.group(1) if match else "unknown"

    def config(self, layout, service) -> str:
        return render("rabbitmq.conf.j2", port=service.port, app=service.app,
                      password=service.password)

    def node(self, service) -> str:
        return f"sarge-{service.app}@localhost"

    def server_env(self, layout, service, program) -> dict:
        data = layout.service_data_dir(service.app, service.kind)
        return {
            "HOME": data, "ERL_EPMD_PORT": str(service.ports["epmd"]),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node(service),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(service.port),
            "RABBITMQ_DIST_PORT": str(service.ports["dist"]),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONFIG_FILE": layout.service_config_path(service.id),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{data}/advanced.config",
            "RABBITMQ_MNESIA_BASE": f"{data}/mnesia", "RABBITMQ_LOG_BASE": f"{data}/log",
            "RABBITMQ_LOGS": "-", "RABBITMQ_ENABLED_PLUGINS_FILE": f"{data}/enabled_plugins",
            "RABBITMQ_PID_FILE": f"{data}/rabbitmq.pid",
        }

    def argv(self, layout, service, program, user_name, which=shutil.which) -> list:
        if program == "epmd":
            return [self.executable("epmd", which), "-port", str(service.ports["epmd"]),
                    "-address", "127.0.0.1"]
        return [self.executable("server", which)]

    def waits_for(self, service, program) -> tuple:
        return (service.ports["epmd"],) if program == "server" else ()

    def variables(self, service) -> dict:
        url = f"amqp://{service.app}:{service.password}@127.0.0.1:{service.port}/{service.app}"
        return {"AMQP_URL": url, "CELERY_BROKER_URL": url}

    def answers(self, service) -> bool:
        try:
            return exchange(service.port, _AMQP_HEADER, size=8)[:1] == b"\x01"
        except OSError:
            return False

    def reuse(self, layout, service, user, which=shutil.which) -> None:
        """The app's vhost, user and permissions as a new node makes them, the user's
        password the new record's: one ``rabbitmqctl import_definitions`` (one Erlang VM
        started, where add_vhost, add_user, change_password and set_permissions started
        four), which adds what is missing and updates what is there; the password as its
        salted hash, on stdin (never on a command line)."""
        app = service.app
        definitions = {
            "vhosts": [{"name": app}],
            "users": [{"name": app, "password_hash": password_hash(service.password),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}],
            "permissions": [{"user": app, "vhost": app, "configure": ".*", "write": ".*",
                             "read": ".*"}],
        }
        self.ctl(layout, service, user, ["import_definitions"], which,
                 stdin=json.dumps(definitions))

    def backup(self, layout, service, user, which=shutil.which) -> bytes:
        """``rabbitmqctl export_definitions -``: the vhost, users, queues, exchanges,
        bindings and policies, as JSON."""
        out = self.ctl(layout, service, user, ["export_definitions", "-"], which)
        if not out.strip().startswith(b"{"):
            raise ServiceError(f"{service.id}: rabbitmqctl export_definitions wrote no "
                               f"JSON: {out[:200].decode(errors='replace')}")
        return out

    def ctl(self, layout, service, user, args, which=shutil.which, stdin=None, ok=(0,),
            timeout=120) -> bytes:
        """Run ``rabbitmqctl ARGS`` on the service's node as the app's user (the node's
        cookie is in its data folder, the user's): its stdout, or :class:`ServiceError`
        when it exits with a status not in ``ok``."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               **self.server_env(layout, service, "ctl")}
        argv = [self.executable("ctl", which), "-q", "-n", self.node(service), *args]
        kwargs = user.popen_kwargs() if user is not None else {}
        try:
            done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout,
                                  cwd=env["HOME"], input=(stdin or "").encode(), **kwargs)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"{service.id}: rabbitmqctl {args[0]}: {exc}") from exc
        if done.returncode not in ok:
            said = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise ServiceError(f"{service.id}: rabbitmqctl {args[0]} failed (exit status "
                               f"{done.returncode}): {said[-300:]}")
        return done.stdout


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256`` of ``password``: base64 of a 4-byte
    salt (random unless given) and of SHA-256 over the salt and the password's UTF-8."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")
