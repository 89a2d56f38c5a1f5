"""The store of backing services: one record per service, ``var/services/ID.json``.

A service's id is ``svc.APP.KIND`` (``svc.web.redis``): the name of its supervisord
group, of its program file (``etc/supervisor.d/ID.conf``), of its log and of the
owner of its ports in ``var/ports``. No instance id has a dot, so nothing that reads
instances' groups (``list``, ``status``, the crash watch, ``repair``) takes a
service for one. The record holds what outlives every deploy: the app, the kind,
the ports, the password (the folder is root's alone, the file 0600), the server's
version and the memory cap; the URLs every instance gets are made from it
(:func:`variables`), when a process is launched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

from ..errors import SettingsError, UsageError
from ..files import File, read_text, write_file
from ..instance import APP_NAME_RE, check_app_name

SERVICE_ID_RE = re.compile(r"svc\.(%s)\.([a-z]+)" % APP_NAME_RE.pattern)


def _kind(name: str):
    """The kind called ``name`` (:func:`.kinds.get`). Imported here: the kinds' modules
    (and subprocess, shutil) were 6 ms of every launch of a process, which an app with
    no services never needs."""
    from . import kinds

    return kinds.get(name)


def service_id(app: str, kind: str) -> str:
    """``svc.APP.KIND``: the id of the app's service of that kind (one of each)."""
    return f"svc.{check_app_name(app)}.{_kind(kind).name}"


@dataclasses.dataclass(frozen=True)
class Service:
    """One backing service of an app: its ports by role (``main``, and RabbitMQ's
    ``dist`` and ``epmd``), password, the server's version, when it was made and, for
    Memcached, its memory cap in MiB and the unix socket it listens on instead of a
    port (``socket``: its path)."""

    app: str
    kind: str
    ports: dict
    password: str
    version: str
    created: str
    memory: int | None = None
    socket: str | None = None

    @property
    def id(self) -> str:
        return f"svc.{self.app}.{self.kind}"

    @property
    def port(self) -> int | None:
        return self.ports.get("main")

    @property
    def address(self) -> str:
        """Where it answers: ``127.0.0.1:PORT``, or ``unix:PATH``."""
        return f"unix:{self.socket}" if self.socket else f"127.0.0.1:{self.port}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, path: str) -> Service:
        try:
            data = json.loads(text)
            service = cls(**data)
            check_app_name(service.app)
            _kind(service.kind)
            if not all(isinstance(p, int) for p in service.ports.values()):
                raise TypeError("ports")
        except (ValueError, TypeError, AttributeError, KeyError, UsageError) as exc:
            raise SettingsError(f"the service record {path} is damaged ({exc}); restore it "
                                "from a backup, or remove the service's files by hand "
                                "(docs: Backing services)") from exc
        return service


class ServiceStore:
    """The records of the backing services of the home whose paths ``layout`` gives."""

    def __init__(self, layout):
        self.layout = layout

    def get(self, app: str, kind: str):
        """The app's service of ``kind``, or None."""
        path = self.layout.service_record_path(service_id(app, kind))
        text = read_text(path)
        return None if text is None else Service.from_json(text, path)

    def all(self, app: str | None = None) -> list:
        """Every service of the home (of ``app`` alone, when given), by app and kind."""
        folder = self.layout.services_dir
        prefix = "svc." if app is None else f"svc.{check_app_name(app)}."
        found = []
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            # read the app's records alone: every process of every instance asks
            if name.startswith(prefix) and name.endswith(".json") and SERVICE_ID_RE.fullmatch(
                    name[:-5]):
                path = os.path.join(folder, name)
                text = read_text(path)
                if text is not None:
                    found.append(Service.from_json(text, path))
        return [s for s in found if app is None or s.app == app]

    def save(self, service: Service) -> None:
        os.makedirs(self.layout.services_dir, 0o700, exist_ok=True)
        write_file(File(self.layout.service_record_path(service.id), service.to_json(),
                        mode=0o600))

    def remove(self, service: Service) -> None:
        try:
            os.unlink(self.layout.service_record_path(service.id))
        except FileNotFoundError:
            pass


def variables(layout, app: str) -> dict:
    """The variables the app's services give each of its instances (``REDIS_URL``,
    ``MEMCACHED_SERVERS``, ``CELERY_BROKER_URL``, ``AMQP_URL``), passwords included;
    a broker from RabbitMQ wins over one from Redis."""
    found = {}
    services = sorted(ServiceStore(layout).all(app), key=lambda s: _kind(s.kind).rank)
    for service in services:
        found.update(_kind(service.kind).variables(service))
    return found
