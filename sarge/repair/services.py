"""Backing services brought back from their records (``var/services/ID.json``): the
server's configuration and the supervisord program rendered again when missing or not
as sarge renders them, and a service supervisord does not run started again."""

from __future__ import annotations

import os

from ..commands import run_as
from ..errors import SargeError, SupervisorError
from ..files import write_file
from ..services import programs
from ..services.kinds import get as kind_of
from ..services.store import SERVICE_ID_RE, Service
from ..supervisord import states as process_states
from .findings import read


def repair_services(home, findings) -> None:
    """Each service of the home whole and running again (a record that cannot be read,
    or a service's program without a record, is the operator's)."""
    folder = home.services_dir
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    running = home.lifecycle.states()  # None: supervisord is down
    ids = set()
    for name in names:
        if not (name.endswith(".json") and SERVICE_ID_RE.fullmatch(name[:-5])):
            continue
        path = os.path.join(folder, name)
        text, problem = read(path)
        try:
            service = Service.from_json(text or "", path) if problem is None else None
        except SargeError as exc:
            problem = str(exc).split(";")[0]
            service = None
        if service is None:
            findings.manual(path, problem or "damaged", "restore it from a backup; without "
                            "it sarge cannot run the service (its password is in there)")
            continue
        ids.add(service.id)
        _repair(home, findings, service, running)
    for name in sorted(os.listdir(home.programs_dir)):
        if name.startswith("svc.") and name.endswith(".conf") and name[:-5] not in ids:
            findings.manual(os.path.join(home.programs_dir, name), "a backing service's "
                            "program without its record", "restore the record (var/services) "
                            "from a backup, or remove the file and the service's data by hand")


def _repair(home, findings, service: Service, running) -> None:
    try:
        user = run_as(home, home.settings, service.app)
    except SargeError as exc:
        findings.manual(home.program_path(service.id), f"cannot run: {exc}", "fix the "
                        "settings, then run repair again")
        return
    config = programs.config_file(home, service, user)
    if config is not None and read(config.path)[0] != config.text:
        findings.fix(config.path, "missing or not as sarge renders it",
                     "rendered again from the service's record",
                     lambda: programs.write_config(home, config, user))
    program = programs.program_file(home, service)
    if read(program.path)[0] != program.text:
        findings.fix(program.path, "missing or not as sarge renders it",
                     "rendered again from the service's record",
                     lambda: write_file(program))
    if running is None:
        return  # supervisord starts it when it starts
    names = [f"{service.id}:{p}" for p in kind_of(service.kind).programs]
    if all(running.get(n, {}).get("statename") in process_states.UP for n in names):
        return

    def start():
        try:
            if names[0] not in running:
                home.supervisor.add(service.id, program.path)
            home.supervisor.start_group(service.id, wait=False)
        except SupervisorError:
            pass  # its log says why; supervisord's status shows it
    findings.fix(program.path, "not running under supervisord", "started again", start)
