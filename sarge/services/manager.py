"""``sarge HOME service``: add, list, remove and back up an app's backing services.

Each service is a supervisord group of its own (:mod:`.programs`), on ports of the
home's range (``var/ports``, as instances' are), run as the app's user with its data
in ``var/data/APP/KIND``; its record is :mod:`.store`'s. A deploy, a rollback and a
route only ever touch instances' groups, so they never restart a service; a service
starts at boot with supervisord (autostart), and ``repair`` brings back one whose
files were lost or damaged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time

from .. import journal
from ..commands import run_as
from ..errors import ServiceError, SupervisordNotRunning, UsageError
from ..files import remove_tree, write_file
from ..instance import check_app_name, utcnow
from ..logs import tail
from . import kinds, programs
from .store import Service, ServiceStore


class Services:
    """The backing services of ``home``; ``which`` finds a server's executable
    (:func:`shutil.which`), ``timeout`` is how long a new server may take to answer,
    ``progress(message)`` hears of a long step as it begins."""

    def __init__(self, home, *, which=shutil.which, timeout: float = 90,
                 sleep=time.sleep, clock=time.monotonic, progress=None):
        self.home = home
        self.progress = progress or (lambda message: None)
        self.store = ServiceStore(home)
        self.which = which
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock

    # -- add ---------------------------------------------------------------------------------

    def add(self, app: str, kind_name: str, version: str | None = None,
            memory: int | None = None, socket: bool = False) -> Service:
        """Make, start and wait for the app's service of ``kind_name`` (on a unix socket
        in its data folder with ``socket``: Memcached's); everything it made is removed
        again when any step fails."""
        home = self.home
        home.check()
        check_app_name(app)
        kind = kinds.get(kind_name)
        if memory is not None and kind.name != "memcached":
            raise UsageError("--memory is Memcached's memory cap; other services take none")
        if socket and kind.name != "memcached":
            raise UsageError("--socket is for Memcached, which has no password; the others "
                             "listen on a port of 127.0.0.1 and ask for theirs")
        path = os.path.join(home.service_data_dir(app, kind.name), "memcached.sock")
        if socket and len(os.fsencode(path)) > 107:
            raise UsageError(f"--socket: {path} is too long for a unix socket (107 bytes)")
        for program in kind.executables:
            kind.executable(program, self.which)
        found_version = kind.check_version(version, self.which)
        user = run_as(home, home.settings, app)  # refuses settings that name no one
        home.supervisor.processes()  # supervisord must be running: say so before anything
        with home.lock():
            existing = self.store.get(app, kind.name)
            if existing is not None:
                raise ServiceError(f"{app} has a {kind.name} already (on "
                                   f"{existing.address}); `sarge HOME service list` shows it")
            data_dir = home.service_data_dir(app, kind.name)
            had_data = os.path.lexists(data_dir)
            service = Service(app, kind.name, {}, secrets.token_urlsafe(24), found_version,
                              utcnow(), memory, path if socket else None)
            self.progress(f"starting {kind.name} {found_version} for {app} ...")
            start = self.clock()
            try:
                service = self._make(service, user)
            except BaseException as exc:
                self._unmake(service, data=not had_data)
                self._record("service add", service, start, exc)
                raise
            home.log_action("service-add", f"{service.id} {service.address}")
        try:
            self._wait(service)
            if had_data:
                kind.reuse(home, service, user, self.which)
        except BaseException as exc:
            with home.lock():
                self._unmake(service, data=not had_data)
            self._record("service add", service, start, exc)
            raise
        self._record("service add", service, start)
        return service

    def _record(self, action: str, service: Service, start: float, failure=None) -> None:
        """The change in the deploy history (``sarge HOME history``): never its password;
        a history that cannot be written is said in the action log, the change stands."""
        record = {"action": action, "app": service.app, "service": service.id,
                  "kind": service.kind, "version": service.version,
                  "ports": service.ports, **journal.who(),
                  ("from" if action == "service remove" else "to"): service.id,
                  "outcome": "ok" if failure is None else "failed",
                  "duration": round(self.clock() - start, 2)}
        if failure is not None:
            record["reason"] = str(failure) or type(failure).__name__
        try:
            journal.Journal(self.home.history_path, self.home.history_lock_path,
                            utcnow).append(record)
        except OSError as exc:
            self.home.log_action("history-unwritten", f"{action} {service.id}: {exc}")

    def _make(self, service: Service, user) -> Service:
        home = self.home
        ports = home.store.ports()
        for role in kinds.get(service.kind).roles_of(service):
            owner = service.id if role == "main" else f"{service.id}/{role}"
            service.ports[role] = ports.allocate(owner)
            if role == "main":  # the record makes the links count as held
                self.store.save(service)
        self.store.save(service)  # (one on a socket takes no port)
        programs.write_config(home, programs.config_file(home, service, user), user)
        write_file(programs.program_file(home, service))
        home.supervisor.add(service.id, home.program_path(service.id))
        home.supervisor.start_group(service.id, wait=True)
        return service

    def _wait(self, service: Service) -> None:
        """Until supervisord says each program RUNNING (up startsecs) and the server
        answers; :class:`ServiceError` with its log's last lines when it cannot start."""
        kind = kinds.get(service.kind)
        names = [f"{service.id}:{p}" for p in kind.programs]
        log = self.home.log_path(service.id, kind.programs[-1])
        deadline = self.clock() + self.timeout
        while True:
            infos = [self.home.supervisor.process(n) for n in names]
            states = [i["statename"] if i else "UNKNOWN" for i in infos]
            if "FATAL" in states or "UNKNOWN" in states:
                last = " | ".join(tail(log, 3)) or "(empty)"
                raise ServiceError(f"{service.id} did not start ({'/'.join(states)}); its "
                                   f"log, {log}, ends with: {last[-300:]}")
            if set(states) == {"RUNNING"} and kind.answers(service):
                return
            if self.clock() > deadline:
                raise ServiceError(
                    f"{service.id} did not answer on {service.address} within "
                    f"{self.timeout:g}s; its log, {log}, says why")
            self.sleep(0.1)

    # -- remove ------------------------------------------------------------------------------

    def remove(self, app: str, kind_name: str, data: bool = False) -> dict:
        """Stop the service and remove its program, configuration, ports and record; its
        data folder too with ``data``."""
        home = self.home
        home.check()
        service = self.get(app, kind_name)
        home.supervisor.processes()
        start = self.clock()
        with home.lock():
            left = self._unmake(service, data=data)
            home.log_action("service-remove", service.id + (" with its data" if data else ""))
        self._record("service remove", service, start)
        if left:
            raise ServiceError(f"{service.id} is removed, but {left[0].path} could not be "
                               f"({left[0].reason}); remove it by hand")
        return {"service": service.id, "data": data,
                "data_dir": home.service_data_dir(service.app, service.kind)}

    def remove_app(self, app: str, data: bool = False) -> list:
        """Remove every service of ``app`` (``undeploy``): the ids removed."""
        return [self.remove(s.app, s.kind, data=data)["service"]
                for s in self.store.all(app)]

    def _unmake(self, service: Service, data: bool) -> list:
        """Undo what :meth:`_make` did, each step safe to run again; with ``data`` the data
        folder goes too. Return what could not be removed."""
        home = self.home
        kind = kinds.get(service.kind)
        with contextlib.suppress(SupervisordNotRunning):
            home.supervisor.stop_group(service.id, reversed(kind.programs))
            home.supervisor.remove(service.id)
        for path in (home.program_path(service.id), home.service_config_path(service.id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        ports = home.store.ports()
        for role, port in service.ports.items():
            ports.release(port, service.id if role == "main" else f"{service.id}/{role}")
        self.store.remove(service)
        left = remove_tree(home.state_dir(service.id))
        if data:
            left += remove_tree(home.service_data_dir(service.app, service.kind))
        return left

    # -- read --------------------------------------------------------------------------------

    def get(self, app: str, kind_name: str) -> Service:
        service = self.store.get(app, kinds.get(kind_name).name)
        if service is None:
            raise ServiceError(f"{check_app_name(app)} has no {kind_name}; `sarge HOME "
                               f"service add {app} {kind_name}` makes one")
        return service

    def listing(self, app: str | None = None) -> list:
        """A dict per service: id, app, kind, port, version, state (its last program's,
        lower case; "unknown" without supervisord), pid, data folder, variables
        (passwords hidden)."""
        self.home.check()
        if app is not None:
            check_app_name(app)
        try:
            infos = self.home.supervisor.processes()
        except SupervisordNotRunning:
            infos = {}
        rows = []
        for service in self.store.all(app):
            kind = kinds.get(service.kind)
            info = infos.get(f"{service.id}:{kind.programs[-1]}")
            rows.append({
                "id": service.id, "app": service.app, "kind": service.kind,
                "port": service.port, "ports": service.ports, "socket": service.socket,
                "address": service.address, "version": service.version,
                "memory": service.memory, "created": service.created,
                "state": info["statename"].lower() if info else "unknown",
                "pid": info["pid"] or None if info else None,
                "data_dir": self.home.service_data_dir(service.app, service.kind),
                "variables": kind.public(service)})
        return rows

    # -- back up -----------------------------------------------------------------------------

    def backup(self, app: str, kind_name: str, output: str) -> dict:
        """Write a consistent copy of the service's data to ``output`` (0600, atomically):
        {"service", "path", "bytes", "format"}."""
        home = self.home
        home.check()
        service = self.get(app, kind_name)
        kind = kinds.get(service.kind)
        output = os.path.abspath(output)
        if os.path.isdir(output) or not os.path.isdir(os.path.dirname(output)):
            raise UsageError(f"-o {output}: give a file in a folder that exists")
        if not kind.answers(service):
            raise ServiceError(f"{service.id} does not answer on {service.address}: "
                               "start it (`sarge HOME repair` brings it back) and try again")
        data = kind.backup(home, service, run_as(home, home.settings, service.app), self.which)
        write_bytes(output, data)
        home.log_action("service-backup", f"{service.id} -> {output} ({len(data)} bytes)")
        return {"service": service.id, "path": output, "bytes": len(data),
                "format": kind.backup_format}


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path``, mode 0600, atomically (as :func:`~sarge.files.write_file`)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

