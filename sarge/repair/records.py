"""Instance records (``var/instances/ID.json``) rebuilt from what outlives them: the
folder, the port link, the program, a deployed configuration or an app's state."""

from __future__ import annotations

import datetime
import os

from .. import build, manifest, pythons
from ..commands import run_as
from ..errors import SargeError
from ..files import File, write_file
from ..instance import INSTANCE_ID_RE, Instance, uses_socket
from .findings import read


class Records:
    """The instances of ``home`` as repair finds them; ``states`` are the apps' deploy
    states (app -> AppState), which say whether a deploy made an instance."""

    def __init__(self, home, findings, states: dict):
        self.home = home
        self.findings = findings
        self.states = states
        self._links = None

    def scan(self) -> dict:
        """Every identifiable instance, by id, its damaged records rebuilt."""
        home = self.home
        folder = home.records_dir
        ids = {n[:-5] for n in os.listdir(folder) if n.endswith(".json") and n[0] != "."}
        ids.update(n[:-5] for n in os.listdir(home.programs_dir)
                   if n.endswith(".conf") and INSTANCE_ID_RE.fullmatch(n[:-5]))
        ids.update(o for o in self.port_links() if not o.startswith("svc."))  # services'
        ids.update(n for n in os.listdir(home.path)
                   if INSTANCE_ID_RE.fullmatch(n) and os.path.isdir(home.instance_dir(n)))
        records = {}
        for instance_id in sorted(ids):
            record = self._record(instance_id, os.path.join(folder, instance_id + ".json"))
            if record is not None:
                records[instance_id] = record
        return records

    def _record(self, instance_id, path):
        if not INSTANCE_ID_RE.fullmatch(instance_id):
            self.findings.manual(path, "not the record of an instance id sarge makes",
                                 "move it out of var/instances")
            return None
        text, problem = read(path)
        if text is not None:
            try:
                return Instance.from_json(text, path)
            except SargeError as exc:
                problem = str(exc).split(";")[0]
        problem = problem or "missing"
        rebuilt = self._rebuild(instance_id)
        if rebuilt is None:
            self.findings.manual(
                path, f"{problem}, and too little is left of {instance_id} to know it was "
                "ever made whole (it takes its folder, its port, and its program, a deployed "
                "configuration or an app's state naming it)", f"remove what is left of "
                f"{instance_id} (folder, port link in var/ports, program) if it is not "
                "needed; restore its record from a backup if it is")
            return None
        self.findings.fix(path, problem,
                          f"rebuilt from its folder and port link (port {rebuilt.port}, "
                          f"processes {', '.join(sorted(rebuilt.processes))})",
                          lambda: write_file(File(path, rebuilt.to_json())))
        return rebuilt

    def port_links(self) -> dict:
        """instance id -> port, from the ``var/ports`` links (read once: repair holds the
        home's lock and makes none)."""
        if self._links is not None:
            return self._links
        folder = self.home.ports_dir
        owners = self._links = {}
        for name in os.listdir(folder):
            if name.isdigit():
                try:
                    owners[os.readlink(os.path.join(folder, name))] = int(name)
                except OSError:
                    continue
        return owners

    def born(self, instance_id) -> int:
        """When the instance was made, in ns: its port link's time (a link is never
        changed), else its folder's."""
        port = self.port_links().get(instance_id)
        for path in ([os.path.join(self.home.ports_dir, str(port))] if port else []
                     ) + [self.home.instance_dir(instance_id)]:
            try:
                return os.lstat(path).st_mtime_ns
            except OSError:
                continue
        return 0

    def _rebuild(self, instance_id):
        """The record of ``instance_id`` from what is left of it, or None when that is too
        little to tell a whole instance from what a killed ``new`` left."""
        home = self.home
        folder = home.instance_dir(instance_id)
        port = self.port_links().get(instance_id)
        deployed = os.path.exists(home.instance_config_path(instance_id)) or any(
            instance_id in (s.current, *s.previous) for s in self.states.values())
        program = os.path.exists(home.program_path(instance_id))
        if port is None or not os.path.isdir(folder) or not (program or deployed):
            return None
        try:
            processes = build.read_procfile(folder)
        except SargeError:
            processes = {"web": None}
        processes = build.split_steps(processes)[0]
        try:
            declared = manifest.load(folder, set(processes)).to_dict()
        except SargeError:
            declared = {}
        app = INSTANCE_ID_RE.fullmatch(instance_id).group(1)
        created = datetime.datetime.fromtimestamp(
            self.born(instance_id) / 1e9, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Instance(instance_id, app, port, created, processes=processes,
                        virtualenv=self._virtualenv(folder, app),
                        unix_socket=uses_socket(processes), manifest=declared,
                        origin="deploy" if deployed else "new")

    def _virtualenv(self, folder, app):
        """The content-addressed virtualenv the instance's requirements name, if it is there."""
        home = self.home
        requirements = os.path.join(folder, "requirements.txt")
        if not os.path.isfile(requirements):
            requirements = None
        environments = build.Environments.of(home.envs_dir, home.settings, home.python)
        try:
            user = run_as(home, home.settings, app)
        except SargeError:
            user = None
        try:
            home_python = pythons.configured(home.settings, home.python)
            python = pythons.choose(folder, home_python, user)
        except SargeError:
            return None
        if requirements is None and python is home_python:
            return None
        candidate = environments.path_for(requirements, user, python=python)
        return candidate if os.path.isdir(candidate) else None
