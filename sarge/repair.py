"""``sarge HOME repair``: rebuild damaged state from what is still true.

sarge writes every state file atomically, but a disk that lies about fsync,
a full disk, or an operator's editor can still leave one empty or cut short.
Each file is rebuilt only from facts that outlive it:

``var/instances/ID.json`` (an instance's record)
    the id (the file's name), the app (the id's prefix), the port (the
    ``var/ports/PORT`` link naming the id), the processes (the instance
    folder's Procfile or ``server``), the virtualenv (content-addressed: the
    folder's ``requirements.txt`` names it), the origin (a deploy made it when
    it has a frozen configuration or an app's state names it) and the creation
    time (the folder's). An id with neither folder, port nor program is not
    identified, and is left for the operator: repair never removes anything.
``etc/supervisor.d/ID.conf`` (its program)
    rendered again from the record; it starts at boot when supervisord runs it
    now (or, supervisord being down, when it is its app's current instance).
``var/apps/APP.json`` (an app's deploy state)
    the front-end address and current instance from the nginx configuration
    sarge wrote; the previous instances from the records, newest first.
``etc/apps/APP.json`` (an app's variables)
    the copy its current instance was deployed with.
``etc/supervisord.conf``, ``bin/*``
    generated again, as ``init`` does.

What cannot be rebuilt (``etc/sarge.toml``, an app's variables with no
deployed copy) is reported with what to do.
"""

from __future__ import annotations

import configparser
import dataclasses
import datetime
import os
import re

from . import build, render
from .apps import AppState, load_state
from .environ import load_app_config, save_app_config
from .errors import SargeError, SupervisorError
from .files import read_text, write_file
from .instance import INSTANCE_ID_RE, Instance


@dataclasses.dataclass
class Finding:
    """One damaged or missing file: what is wrong, and what repair does (or the operator
    must do, when ``manual``)."""

    path: str
    problem: str
    action: str
    manual: bool = False
    repaired: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Repair:
    """Finds (and, unless ``dry_run``, repairs) the damaged state of ``home``."""

    def __init__(self, home, dry_run: bool = False):
        self.home = home
        self.dry_run = dry_run
        self.findings = []
        self._supervisord = ()  # not asked yet
        self._rebuilt_states = {}  # app -> AppState, rebuilt (even in a dry run)

    def run(self) -> list:
        """Check everything, repair what can be; return the :class:`Finding` list."""
        home = self.home
        try:
            home.settings
        except SargeError as exc:
            self._manual(home.settings_path, str(exc), "fix the file by hand (sarge never "
                         "rewrites it); `sarge HOME init` writes a fresh one if you remove it")
            return self.findings
        with home.lock():
            self._generated()
            records = self._records()
            self._programs(records)
            self._app_states(records)
            self._app_configs()
            self._instance_configs(records)
        return self.findings

    # -- findings ---------------------------------------------------------------------------

    def _fix(self, path, problem, action, fix) -> None:
        finding = Finding(path, problem, action)
        if not self.dry_run:
            fix()
            finding.repaired = True
            self.home.log_action("repair", f"{os.path.relpath(path, self.home.path)}: {action}")
        self.findings.append(finding)

    def _manual(self, path, problem, action) -> None:
        self.findings.append(Finding(path, problem, action, manual=True))

    def _states_on(self):
        """supervisord's info by program name, or None when it is not running."""
        if self._supervisord == ():
            self._supervisord = self.home.states()
        return self._supervisord

    # -- generated files --------------------------------------------------------------------

    def _generated(self) -> None:
        for file in self.home.generated_files():
            if read_text(file.path) != file.text:
                self._fix(file.path, "missing or not as sarge generates it",
                          "generated again", lambda file=file: write_file(file))

    # -- instance records -------------------------------------------------------------------

    def _records(self) -> dict:
        """Every identifiable instance, by id, its damaged records rebuilt."""
        home = self.home
        folder = os.path.join(home.path, "var", "instances")
        ids = set()
        for name in os.listdir(folder):
            if name.endswith(".json") and not name.startswith("."):
                ids.add(name[:-5])
        programs = os.path.join(home.path, "etc", "supervisor.d")
        ids.update(n[:-5] for n in os.listdir(programs)
                   if n.endswith(".conf") and INSTANCE_ID_RE.fullmatch(n[:-5]))
        ids.update(self._port_links())
        ids.update(n for n in os.listdir(home.path)
                   if INSTANCE_ID_RE.fullmatch(n) and os.path.isdir(home.instance_dir(n)))
        records = {}
        for instance_id in sorted(ids):
            path = os.path.join(folder, instance_id + ".json")
            if not INSTANCE_ID_RE.fullmatch(instance_id):
                self._manual(path, "not the record of an instance id sarge makes",
                             "move it out of var/instances")
                continue
            text = read_text(path)
            if text is not None:
                try:
                    records[instance_id] = Instance.from_json(text, path)
                    continue
                except SargeError as exc:
                    problem = str(exc).split(";")[0]
            else:
                problem = "missing"
            rebuilt = self._rebuild(instance_id)
            if rebuilt is None:
                self._manual(path, f"{problem}, and too little is left of {instance_id} "
                             "to rebuild it (it needs the instance's folder and port)",
                             f"remove what is left of {instance_id} (record, folder, "
                             "program) if it is gone; restore it from a backup if not")
                continue
            records[instance_id] = rebuilt
            self._fix(path, problem,
                      f"rebuilt from its folder and port link (port {rebuilt.port}, "
                      f"processes {', '.join(sorted(rebuilt.processes))})",
                      lambda r=rebuilt, p=path: write_file(render.File(p, r.to_json())))
        return records

    def _port_links(self) -> dict:
        """instance id -> port, from the ``var/ports`` links."""
        folder = os.path.join(self.home.path, "var", "ports")
        owners = {}
        for name in os.listdir(folder):
            if name.isdigit():
                try:
                    owners[os.readlink(os.path.join(folder, name))] = int(name)
                except OSError:
                    continue
        return owners

    def _rebuild(self, instance_id):
        """The record of ``instance_id`` from what is left of it, or None."""
        home = self.home
        folder = home.instance_dir(instance_id)
        port = self._port_links().get(instance_id)
        if port is None:  # the program file's first line names it too
            first = (read_text(home.program_path(instance_id)) or "").split("\n", 1)[0]
            match = re.search(r", port (\d+)\.$", first)
            port = int(match.group(1)) if match else None
        if port is None or not os.path.isdir(folder):
            return None
        try:
            processes = build.read_procfile(folder)
        except SargeError:
            processes = {"web": None}
        processes.pop("release", None)
        requirements = os.path.join(folder, "requirements.txt")
        virtualenv = None
        if os.path.isfile(requirements):
            candidate = build.Environments(home.envs_dir, python=home.python).path_for(
                requirements)
            virtualenv = candidate if os.path.isdir(candidate) else None
        deployed = os.path.exists(home.instance_config_path(instance_id)) or any(
            instance_id in (s.current, *s.previous) for s in self._readable_states())
        created = datetime.datetime.fromtimestamp(
            os.stat(folder).st_mtime, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Instance(instance_id, INSTANCE_ID_RE.fullmatch(instance_id).group(1), port,
                        created, processes=processes, virtualenv=virtualenv,
                        origin="deploy" if deployed else "new")

    def _readable_states(self) -> list:
        states = []
        for name in sorted(os.listdir(self.home.apps_dir)):
            if name.endswith(".json"):
                try:
                    states.append(load_state(os.path.join(self.home.apps_dir, name), name[:-5]))
                except SargeError:
                    continue
        return states

    # -- program files ----------------------------------------------------------------------

    def _programs(self, records: dict) -> None:
        home = self.home
        states = self._states_on()
        currents = {s.current for s in self._readable_states()}
        for instance_id, instance in records.items():
            path = home.program_path(instance_id)
            problem = _program_problem(read_text(path),
                                       home.program_file(instance, autostart=False).text)
            if problem is None:
                continue
            info = states.get(f"{instance_id}:web") if states is not None else None
            if info is not None:
                autostart = info["statename"] in ("RUNNING", "STARTING", "BACKOFF")
            else:
                autostart = instance_id in currents
            file = home.program_file(instance, autostart)

            def fix(file=file, instance_id=instance_id, known=info is not None):
                write_file(file)
                if states is not None and not known:
                    try:
                        home.supervisor.add(instance_id, file.path)
                    except SupervisorError:
                        pass  # read when supervisord next starts
            self._fix(path, problem, "rendered again from the record, "
                      + ("starting at boot" if autostart else "stopped at boot"), fix)

    # -- app states and variables -----------------------------------------------------------

    def _app_states(self, records: dict) -> None:
        home = self.home
        routes = self._routes()
        for name in sorted(os.listdir(home.apps_dir)):
            if not name.endswith(".json"):
                continue
            app, path = name[:-5], os.path.join(home.apps_dir, name)
            try:
                load_state(path, app)
                continue
            except SargeError as exc:
                problem = str(exc).split(";")[0]
            listen, current = routes.get(app, (None, None))
            if current not in records:
                current = None
            previous = tuple(i.id for i in sorted(
                (r for r in records.values() if r.application_name == app
                 and r.origin == "deploy" and r.id != current),
                key=lambda r: (r.created, r.id), reverse=True))
            state = AppState(app, listen=listen, current=current, previous=previous)
            self._rebuilt_states[app] = state
            action = (f"rebuilt from the front-end's configuration: {listen} -> {current}"
                      if current else "rebuilt without a current instance (the front-end "
                      "does not route to one): deploy it, or `route` it")
            self._fix(path, problem, action + "; health check reset to GET / within 60 s",
                      lambda s=state, p=path: write_file(render.File(p, s.to_json())))

    def _routes(self) -> dict:
        """app -> (listen, instance id), from the nginx configuration sarge wrote."""
        home = self.home
        path = home.nginx_sites if home.settings.frontend == "system" else home.nginx_conf
        text = read_text(path) or ""
        routes = {}
        pattern = r"# app ([a-z][a-z0-9_-]*): instance (\S+)\n\s*server \{\n\s*listen (\S+);"
        for app, instance_id, listen in re.findall(pattern, text):
            routes[app] = (listen, instance_id)
        return routes

    def _app_configs(self) -> None:
        home = self.home
        folder = os.path.join(home.path, "etc", "apps")
        states = {s.name: s for s in self._readable_states()}
        states.update(self._rebuilt_states)
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not name.endswith(".json") or not os.path.isfile(path):
                continue
            app = name[:-5]
            try:
                load_app_config(path)
                continue
            except SargeError:
                problem = "damaged: not a JSON object of strings"
            current = states[app].current if app in states else None
            frozen = home.instance_config_path(current) if current else None
            try:
                copy = load_app_config(frozen) if frozen and os.path.exists(frozen) else None
            except SargeError:
                copy = None
            if copy is None:
                self._manual(path, problem, "no deployed copy to restore it from: remove it "
                             "and set the variables again with `sarge HOME config`")
                continue
            self._fix(path, problem, f"restored from the copy {current} was deployed with "
                      "(changes made since that deploy are lost)",
                      lambda p=path, c=copy: save_app_config(p, c))

    def _instance_configs(self, records: dict) -> None:
        """The variables each deploy froze for its instance (``etc/apps/instances``)."""
        home = self.home
        folder = os.path.join(home.path, "etc", "apps", "instances")
        if not os.path.isdir(folder):
            return
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            instance = records.get(name[:-5])
            if not name.endswith(".json") or instance is None:
                continue
            try:
                load_app_config(path)
                continue
            except SargeError:
                problem = "damaged: not a JSON object of strings"
            try:
                current = load_app_config(home.app_config_path(instance.application_name))
            except SargeError:
                self._manual(path, problem, "remove it: the instance then gets its app's "
                             "variables (repair those first)")
                continue
            self._fix(path, problem, f"replaced by {instance.application_name}'s variables "
                      "as they are now (the values of its deploy are lost)",
                      lambda p=path, c=current: save_app_config(p, c))


#: Keys of a program section whose values come from the settings of the day.
_SETTINGS_KEYS = {"startsecs", "startretries", "stopwaitsecs", "stdout_logfile_maxbytes",
                  "stdout_logfile_backups"}


def _program_problem(text, expected: str):
    """Why ``text`` is not a usable program file (``expected`` is how sarge renders it
    now, with autostart false), or None. Values that come from settings may differ,
    being numbers; every other key must be as sarge writes it."""
    if text is None:
        return "missing"
    parser, wanted = configparser.RawConfigParser(), configparser.RawConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return f"damaged ({str(exc).splitlines()[0]})"
    wanted.read_string(expected)
    for section in wanted.sections():
        if not parser.has_section(section):
            return f"damaged (no [{section}])"
        for key, value in wanted.items(section):
            found = parser.get(section, key, fallback=None)
            if key == "autostart":
                ok = found in ("true", "false")
            elif key in _SETTINGS_KEYS:
                ok = found is not None and found.isdigit()
            else:
                ok = found == value
            if not ok:
                return f"damaged ([{section}] {key} is {found!r})"
    return None
