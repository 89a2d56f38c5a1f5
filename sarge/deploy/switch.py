"""What deploy, route and rollback share: the apps' states, their locks, the health check
that comes before any switch, and the switch of the front-end itself."""

from __future__ import annotations

import contextlib
import dataclasses
import os

from .. import health
from ..apps import AppState, load_state, load_states
from ..errors import DeployError, InstanceNotFound, PortTaken, SargeError
from ..files import File, locked, write_file
from ..frontend import routes as saved_routes
from ..frontend import tls as certificates
from ..logs import tail
from ..manifest import Manifest
from ..ports import check_unix_holder
from ..processes import tree_pids
from ..supervisord import exits, states
from .singletons import overlapping

#: What the step ``drain`` says of each end of :meth:`~sarge.frontend.Frontend.drain`.
DRAINED = {"drained": "old connections done", "timed out": "timed out",
           "quiet": "only idle connections left: the old version closes them as it stops"}


class Switch:
    """The apps of ``home`` and their front-end ``frontend``; ``steps`` runs the named
    steps; ``check_holder`` proves a port is the instance's own. ``checked`` holds, by
    instance, the processes that passed its health check (``{type: pid}``): what the
    watch after the switch holds the instance to."""

    def __init__(self, home, frontend, steps, check_holder):
        self.home = home
        self.frontend = frontend
        self.steps = steps
        self.check_holder = check_holder
        self.checked = {}

    # -- the apps' states ------------------------------------------------------------------

    def state(self, app) -> AppState:
        return load_state(self.home.app_state_path(app), app)

    def states(self) -> list:
        return load_states(self.home.apps_dir)

    def save(self, state: AppState) -> None:
        write_file(File(self.home.app_state_path(state.name), state.to_json()))

    @contextlib.contextmanager
    def app_lock(self, app):
        """Hold the app's deploy lock, or refuse at once when another deploy holds it."""
        try:
            with locked(self.home.deploy_lock_path(app), blocking=False):
                yield
        except BlockingIOError:
            raise DeployError(f"another deploy, route or rollback of {app} is running; "
                              "try again when it has finished") from None

    # -- before the switch: the health check -------------------------------------------------

    def health_check(self, instance, state: AppState) -> None:
        """The step before any switch: wait until ``instance`` answers ``state``'s check,
        then prove that what answered is the instance's own process tree (a local user
        may have bound its port first)."""
        socket = self.home.app_socket(instance.id) if instance.unix_socket else None
        with self.steps.step("health check") as step:
            headers = health.headers_for(state.site)
            targets = [socket] if socket else [port for _, port in instance.web_ports()]
            seconds = 0.0
            for target in targets:  # every web process, when web is scaled
                seconds = health.wait_ready(target, state.check, state.timeout,
                                            alive=lambda: self.died(instance),
                                            clock=self.steps.clock, headers=headers)
            checked = self.running(instance, overlapping(instance))  # one look for both
            self.check_holders(instance, checked, socket, targets)
            self.checked[instance.id] = checked
            host = f" (Host {headers['Host']})" if "Host" in headers else ""
            each = f" by each of {len(targets)} web processes" if len(targets) > 1 else ""
            step["detail"] = f"GET {state.check}{host} answered{each} after {seconds:.2f}s"

    def check_holders(self, instance, checked, socket, ports) -> None:
        """Prove that the processes ``checked`` ({type: pid}) hold ``socket`` or every port
        of ``ports``. When they do not because one of them exited (and supervisord may
        have started it again, on the same port) after it answered, that is the failure,
        not another program."""
        pids = tree_pids(checked.values())
        try:
            if socket:
                check_unix_holder(socket, pids, instance.id)
            else:
                for port in ports:
                    self.check_holder(port, pids, instance.id)
        except PortTaken:
            replaced = self.replaced(instance, checked)
            if replaced:
                raise DeployError(f"its {replaced[0]} process exited after it answered the "
                                  "health check") from None
            raise

    def replaced(self, instance, pids):
        """The first of the instance's processes ``pids`` (``{type: pid}``) that is no
        longer that pid (it exited, or exited and was started again), as ``(type, its
        supervisord info or None)``; or None."""
        for process, pid in pids.items():
            info = self.home.supervisor.process(f"{instance.id}:{process}")
            if info is None or info["statename"] in states.DEAD or info["pid"] != pid:
                return process, info
        return None

    def died(self, instance):
        """None while the instance's processes live, else what happened to them (asked at
        every poll of the health check: of supervisord only, not of the record again)."""
        instance_id = instance.id
        for process in overlapping(instance):  # singletons start after the switch
            info = self.home.supervisor.process(f"{instance_id}:{process}")
            if info is None or info["statename"] in states.DEAD:
                how = exits.how_exited(self.home, self.home.supervisor, instance_id, process,
                                       info=info)
                last = " | ".join(tail(self.home.log_path(instance_id, process), 1))
                return (f"its {process} process exited ({how}) before it "
                        f"answered the health check" + (f"; it said: {last}" if last else ""))
        return None

    def running(self, instance, processes) -> dict:
        """``{type: pid}`` of the instance's ``processes`` (types) that run now."""
        pids = {}
        for process in processes:
            info = self.home.supervisor.process(f"{instance.id}:{process}")
            if info is not None and info["statename"] in states.UP:
                pids[process] = info["pid"]
        return pids

    def pids(self, instance) -> set:
        """The pids of the instance's processes and their descendants."""
        infos = [self.home.supervisor.process(f"{instance.id}:{p}")
                 for p in overlapping(instance)]
        return tree_pids(info["pid"] for info in infos if info)

    # -- the switch ----------------------------------------------------------------------------

    def routes(self, backup=None) -> list:
        """Every app's route, from the states on disk (the caller saved its own first);
        ``backup`` ({app: instance}) names the instance that takes a watched app's
        requests when its new one cannot (:mod:`sarge.deploy.watch`)."""
        routes = []
        for state in self.states():
            if not (state.current and state.listen):
                continue
            try:
                instance = self.home.get(state.current)
            except InstanceNotFound:
                # never drop another app's route without a word: it would stop serving
                raise DeployError(
                    f"the app {state.name} routes to {state.current}, which has no record: "
                    "`sarge HOME repair` rebuilds it (or deploy that app again)") from None
            route = {"app": state.name, "instance": instance.id, "listen": state.listen,
                     "port": instance.port, "socket": self.home.app_socket(instance.id)
                     if instance.unix_socket else None, "check": state.check,
                     "site": state.site.to_dict()}
            if instance.ports:  # web scaled: nginx balances across its processes
                route["ports"] = [port for _, port in instance.web_ports()]
            static = Manifest.from_dict(instance.manifest).static
            if static:  # nginx serves them from the instance's folder
                folder = self.home.instance_dir(instance.id)
                route["static"] = [[prefix, os.path.join(folder, name)]
                                   for prefix, name in static]
            spare = (backup or {}).get(state.name)
            if spare is not None and spare.id != instance.id:
                route["backup"] = {"instance": spare.id, "port": spare.port,
                                   "ports": [port for _, port in spare.web_ports()],
                                   "socket": self.home.app_socket(spare.id)
                                   if spare.unix_socket else None}
            routes.append(route)
        return routes

    def switch(self, old: AppState, new: AppState, backup=None):
        """Save ``new`` and point the front-end at its current instance (``backup``: see
        :meth:`routes`); all of it under the front-end's lock, so that a concurrent deploy
        of another app never loads routes read before this one saved its state. Returns
        what is left to drain."""
        with self.frontend.lock():
            served = self._served_digests(new.name)
            new = self._with_copies(old, new, served)
            self.save(new)
            self.steps.fault_point("switch:reload")
            backups = {**self.kept_backups(new.name), **(backup or {})}
            try:
                drain = self.frontend.apply(self.routes(backups))
            except BaseException:
                self.save(old)
                self._discard_copies(new, served | _digests(old))
                raise
            if old.site.tls and not new.site.tls:  # --off: nginx has let go of them now
                certificates.discard(self.home, new.name)
        self.frontend.settle(drain)
        return drain

    def kept_backups(self, app) -> dict:
        """{app: instance}: the backups of the other apps' watches, from the routes the
        front-end has now: a switch of ``app`` keeps them (it only takes its own off)."""
        kept = {}
        for route in saved_routes.load(self.home.routes_path) or ():
            backup = route.get("backup")
            if route["app"] != app and isinstance(backup, dict):
                try:
                    kept[route["app"]] = self.home.get(backup.get("instance"))
                except (InstanceNotFound, SargeError):
                    continue
        return kept

    def _served_digests(self, app) -> set:
        """The digests of the certificate copies of ``app`` that nginx's routes use now."""
        return {((r.get("site") or {}).get("tls") or {}).get("digest")
                for r in saved_routes.load(self.home.routes_path) or ()
                if r["app"] == app} - {None}

    def _discard_copies(self, state: AppState, keep: set) -> None:
        """Remove ``state``'s certificate copies unless their digest is in ``keep``."""
        digest = state.site.tls.digest if state.site.tls else None
        if digest and digest not in keep:
            certificates.discard(self.home, state.name, digest)

    def _with_copies(self, old: AppState, new: AppState, served: set) -> AppState:
        """``new``, its certificate copied into the home if it is not yet
        (:func:`sarge.frontend.tls.install`; the copies of ``old``'s and of what nginx
        serves now, ``served``, are kept)."""
        tls = new.site.tls
        if tls is None or all(os.path.exists(p) for p in certificates.files(
                self.home, new.name, tls.digest).values()):
            return new
        keep = served | _digests(old)
        digest = certificates.install(self.home, new.name, tls.cert, tls.key, keep)
        return new.replace(site=new.site.replace(tls=dataclasses.replace(tls, digest=digest)))

    def target(self, instance) -> str:
        """Where the front-end sends an instance's traffic, for a progress line."""
        if instance.unix_socket:
            return f"unix:{self.home.app_socket(instance.id)}"
        return ", ".join(f"127.0.0.1:{port}" for _, port in instance.web_ports())


def _digests(state: AppState) -> set:
    return {state.site.tls.digest} if state.site.tls else set()
