"""``sarge HOME repair``: rebuild damaged state from what is still true.

sarge writes every state file atomically, but a disk that lies about fsync,
a full disk, or an operator's editor can still leave one empty, cut short or
missing. Each file is rebuilt only from facts that outlive it:

``var/instances/ID.json`` (an instance's record)
    the id (the file's name), the app (the id's prefix), the port (the
    ``var/ports/PORT`` link naming the id), the processes (the instance
    folder's Procfile or ``server``), the virtualenv (content-addressed: the
    folder's ``requirements.txt`` names it), the origin (a deploy made it when
    it has a frozen configuration or an app's state names it) and the creation
    time (the folder's). Only an instance that got that far is rebuilt: its
    folder, its port, and its program file, a deployed configuration or an
    app's state naming it. Less (a folder and a port a killed ``new`` left) is
    reported, not turned into an instance.
``etc/supervisor.d/ID.conf`` (its program)
    a damaged one is rendered again from the record; it starts at boot when
    supervisord runs it now or it is its app's current instance. A missing one
    is reported, and the instance left as it is: ``new`` (a deploy's first step)
    writes it just after the record, and ``destroy`` removes it first, so either,
    interrupted, leaves a record without a program; ``destroy`` removes the rest.
``var/apps/APP.json`` (an app's deploy state)
    the front-end address and current instance from the nginx configuration
    sarge wrote; the previous instances from the records: those a deploy made
    before the current one, newest first (a half-made newer one is left for the
    next deploy to remove).
``etc/apps/APP.json`` (an app's variables)
    the copy its current instance was deployed with.
``etc/supervisord.conf``, ``bin/*``
    generated again, as ``init`` does.

What cannot be rebuilt (``etc/sarge.toml``, an app's variables with no
deployed copy, what is left of an instance too incomplete to identify) is
reported with what to do. Nothing is ever removed.
"""

from __future__ import annotations

import configparser
import dataclasses
import datetime
import os
import re

from . import build
from .apps import AppState, load_state
from .commands import run_as
from .errors import SargeError, SupervisorError
from .files import File, read_text, write_file
from .frontend import routes as saved_routes
from .instance import INSTANCE_ID_RE, Instance, check_app_name, uses_socket
from .layout import FOLDERS
from .supervisord import states
from .variables import load_app_config, save_app_config


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


def _text(path):
    """(text or None, problem or None): a file that is not UTF-8 is damaged, not fatal."""
    try:
        return read_text(path), None
    except SargeError:
        return None, "damaged (not UTF-8 text)"


class Repair:
    """Finds (and, unless ``dry_run``, repairs) the damaged state of ``home``."""

    def __init__(self, home, dry_run: bool = False):
        self.home = home
        self.dry_run = dry_run
        self.findings = []
        self.states = {}  # app -> AppState: readable ones, and rebuilt ones (even dry)
        self._links = None

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
            self.states = self._readable_states()
            records = self._records()
            self._app_states(records)
            self._programs(records)
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

    # -- generated files --------------------------------------------------------------------

    def _generated(self) -> None:
        for folder in FOLDERS:  # the home's one table of folders (sarge.layout)
            path = self.home.folder(folder.name)
            if not os.path.isdir(path):
                self._fix(path, "missing", f"made again, mode {folder.mode:04o}",
                          lambda p=path, m=folder.mode: (os.makedirs(p, m, exist_ok=True),
                                                         os.chmod(p, m)))
        for file in self.home.generated_files():
            if _text(file.path)[0] != file.text:
                self._fix(file.path, "missing or not as sarge generates it",
                          "generated again", lambda file=file: write_file(file))

    # -- instance records -------------------------------------------------------------------

    def _records(self) -> dict:
        """Every identifiable instance, by id, its damaged records rebuilt."""
        home = self.home
        folder = home.records_dir
        ids = {n[:-5] for n in os.listdir(folder) if n.endswith(".json") and n[0] != "."}
        programs = home.programs_dir
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
            text, problem = _text(path)
            if text is not None:
                try:
                    records[instance_id] = Instance.from_json(text, path)
                    continue
                except SargeError as exc:
                    problem = str(exc).split(";")[0]
            problem = problem or "missing"
            rebuilt = self._rebuild(instance_id)
            if rebuilt is None:
                self._manual(path, f"{problem}, and too little is left of {instance_id} to "
                             "know it was ever made whole (it takes its folder, its port, and "
                             "its program, a deployed configuration or an app's state naming "
                             "it)", f"remove what is left of {instance_id} (folder, port link "
                             "in var/ports, program) if it is not needed; restore its record "
                             "from a backup if it is")
                continue
            records[instance_id] = rebuilt
            self._fix(path, problem,
                      f"rebuilt from its folder and port link (port {rebuilt.port}, "
                      f"processes {', '.join(sorted(rebuilt.processes))})",
                      lambda r=rebuilt, p=path: write_file(File(p, r.to_json())))
        return records

    def _port_links(self) -> dict:
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

    def _rebuild(self, instance_id):
        """The record of ``instance_id`` from what is left of it, or None when that is too
        little to tell a whole instance from what a killed ``new`` left."""
        home = self.home
        folder = home.instance_dir(instance_id)
        port = self._port_links().get(instance_id)
        deployed = os.path.exists(home.instance_config_path(instance_id)) or any(
            instance_id in (s.current, *s.previous) for s in self.states.values())
        program = os.path.exists(home.program_path(instance_id))
        if port is None or not os.path.isdir(folder) or not (program or deployed):
            return None
        try:
            processes = build.read_procfile(folder)
        except SargeError:
            processes = {"web": None}
        processes.pop("release", None)
        requirements = os.path.join(folder, "requirements.txt")
        virtualenv = None
        if os.path.isfile(requirements):
            environments = build.Environments.of(home.envs_dir, home.settings, home.python)
            try:
                user = run_as(home, home.settings, INSTANCE_ID_RE.fullmatch(instance_id).group(1))
            except SargeError:
                user = None
            candidate = environments.path_for(requirements, user)
            virtualenv = candidate if os.path.isdir(candidate) else None
        created = datetime.datetime.fromtimestamp(
            self._born(instance_id) / 1e9, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Instance(instance_id, INSTANCE_ID_RE.fullmatch(instance_id).group(1), port,
                        created, processes=processes, virtualenv=virtualenv,
                        unix_socket=uses_socket(processes),
                        origin="deploy" if deployed else "new")

    def _app_names(self, folder) -> set:
        """The apps that ``folder`` has a ``NAME.json`` of; a file with a name no app can
        have is reported."""
        names = set()
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                names.add(check_app_name(name[:-5]))
            except SargeError:
                self._manual(os.path.join(folder, name), "not named after an app",
                             f"move it out of {os.path.relpath(folder, self.home.path)}")
        return names

    def _readable_states(self) -> dict:
        states = {}
        for name in sorted(os.listdir(self.home.apps_dir)):
            if name.endswith(".json"):
                try:
                    state = load_state(os.path.join(self.home.apps_dir, name), name[:-5])
                except SargeError:
                    continue
                if state.name == name[:-5]:
                    states[state.name] = state
        return states

    # -- app states -------------------------------------------------------------------------

    def _app_states(self, records: dict) -> None:
        home = self.home
        routes = self._routes()
        apps = self._app_names(home.apps_dir) | set(routes)
        for app in sorted(apps):
            if app in self.states:
                continue
            path = home.app_state_path(app)
            if os.path.exists(path):
                try:
                    problem = f"damaged: it names the app {load_state(path, app).name!r}"
                except SargeError as exc:
                    problem = str(exc).split(";")[0]
            else:
                problem = "missing, though the front-end routes the app"
            listen, current = routes.get(app, (None, None))
            if current not in records:
                current = None
            state = AppState(app, listen=listen, current=current,
                             previous=self._previous(records, app, current))
            self.states[app] = state
            if current:
                action = f"rebuilt from the front-end's configuration: {listen} -> {current}"
                if state.previous:
                    action += f", previous {', '.join(state.previous)}"
            else:
                action = ("rebuilt without a current instance (the front-end routes to none "
                          "sarge knows): `route` it to the instance that should serve before "
                          "the next deploy, which removes the deploy-made ones it does not "
                          "know")
            self._fix(path, problem, action + "; health check reset to GET / within 60 s",
                      lambda s=state, p=path: write_file(File(p, s.to_json())))

    def _born(self, instance_id) -> int:
        """When the instance was made, in ns: its port link's time (a link is never
        changed), else its folder's."""
        port = self._port_links().get(instance_id)
        for path in ([os.path.join(self.home.ports_dir, str(port))] if port else []
                     ) + [self.home.instance_dir(instance_id)]:
            try:
                return os.lstat(path).st_mtime_ns
            except OSError:
                continue
        return 0

    def _previous(self, records, app, current) -> tuple:
        """The deploy-made instances of ``app`` from before ``current``, newest first (the
        records' times are whole seconds: the port links order those of one second)."""
        if current is None:
            return ()

        def age(record):
            return (record.created, self._born(record.id))
        cut = age(records[current])
        return tuple(r.id for r in sorted(
            (r for r in records.values() if r.application_name == app
             and r.origin == "deploy" and r.id != current and age(r) < cut),
            key=age, reverse=True))

    def _routes(self) -> dict:
        """app -> (listen, instance id), from the routes the front-end was last given
        (``etc/nginx/routes.json``); for a home from before sarge saved them, from the
        comments of the nginx configuration it wrote."""
        home = self.home
        saved = saved_routes.load(home.routes_path)
        if saved is not None:
            return {r["app"]: (r["listen"], r["instance"]) for r in saved}
        path = home.nginx_sites if home.settings.frontend == "system" else home.nginx_conf
        text = _text(path)[0] or ""
        routes = {}
        pattern = r"# app ([a-z][a-z0-9_-]*): instance (\S+)\n\s*server \{\n\s*listen (\S+);"
        for app, instance_id, listen in re.findall(pattern, text):
            routes[app] = (listen, instance_id)
        return routes

    # -- program files ----------------------------------------------------------------------

    def _programs(self, records: dict) -> None:
        home = self.home
        running = home.lifecycle.states()  # None: supervisord is down
        currents = {s.current for s in self.states.values()}
        for instance_id, instance in records.items():
            path = home.program_path(instance_id)
            if not os.path.isdir(home.instance_dir(instance_id)):
                self._manual(home.instance_dir(instance_id), "missing: a destroy was "
                             "interrupted, or the folder was removed by hand",
                             f"finish removing it with `sarge HOME destroy {instance_id}`")
                continue
            text, problem = _text(path)
            if text is None and problem is None:
                # new writes the record, then the program; destroy removes the program
                # first, the record last: either, interrupted, leaves this
                self._manual(path, "missing: a new or a deploy was interrupted before it "
                             "wrote it, or a destroy after it removed it (or it was removed "
                             "by hand)", f"repair leaves the instance as it is; remove it "
                             f"with `sarge HOME destroy {instance_id}` (the app's next deploy "
                             "removes one a deploy made and does not keep), or restore the "
                             "file from a backup")
                continue
            problem = problem or _program_problem(
                text, home.lifecycle.program_file(instance, autostart=False).text)
            if problem is None:
                continue
            info = running.get(f"{instance_id}:web") if running is not None else None
            autostart = instance_id in currents or (
                info is not None and info["statename"] in states.RUNNING)
            file = home.lifecycle.program_file(instance, autostart)

            def fix(file=file, instance_id=instance_id, known=info is not None):
                write_file(file)
                if running is not None and not known:
                    try:
                        home.supervisor.add(instance_id, file.path)
                    except SupervisorError:
                        pass  # read when supervisord next starts
            self._fix(path, problem, "rendered again from the record, "
                      + ("starting at boot" if autostart else "stopped at boot"), fix)

    # -- variables --------------------------------------------------------------------------

    def _app_configs(self) -> None:
        home = self.home
        folder = home.app_configs_dir
        apps = self._app_names(folder) | set(self.states)
        for app in sorted(apps):
            path = home.app_config_path(app)
            if os.path.exists(path):
                try:
                    load_app_config(path)
                    continue
                except SargeError:
                    problem = "damaged: not a JSON object of strings"
            else:
                problem = "missing, though the current instance was deployed with variables"
            state = self.states.get(app)
            frozen = home.instance_config_path(state.current) if state and state.current \
                else None
            try:
                copy = load_app_config(frozen) if frozen else None
            except SargeError:
                copy = None
            if not os.path.exists(path) and not copy:
                continue  # never configured (or every variable unset: the file would be {})
            if copy is None:
                self._manual(path, problem, "no deployed copy to restore it from: remove it "
                             "and set the variables again with `sarge HOME config`")
                continue
            self._fix(path, problem, f"restored from the copy {state.current} was deployed "
                      "with (changes made since that deploy are lost)",
                      lambda p=path, c=copy: save_app_config(p, c))

    def _instance_configs(self, records: dict) -> None:
        """The variables each deploy froze for its instance (``etc/apps/instances``)."""
        home = self.home
        folder = home.instance_configs_dir
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


#: How a program's command named the launcher before 0.2 (still there, as a shim).
_LAUNCHER_BEFORE_0_2 = (" -m sarge.supervisord.launch ", " -m sarge.launch ")

#: Keys of a program section whose values come from the settings of the day.
_SETTINGS_KEYS = {"startsecs", "startretries", "stopwaitsecs", "stdout_logfile_maxbytes",
                  "stdout_logfile_backups"}


def _program_problem(text, expected: str):
    """Why ``text`` is not a usable program file (``expected`` is how sarge renders it
    now, with autostart false), or None. Values that come from settings may differ,
    being numbers, and the command may name the launcher as before 0.2; every other
    key must be as sarge writes it."""
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
            elif key == "command":
                ok = found in (value, value.replace(*_LAUNCHER_BEFORE_0_2))
            elif key in _SETTINGS_KEYS:
                ok = found is not None and found.isdigit()
            else:
                ok = found == value
            if not ok:
                return f"damaged ([{section}] {key} is {found!r})"
    return None
