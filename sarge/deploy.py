"""The rolling deploy, route and rollback, as small named steps.

A deploy: new instance -> unpack -> environment -> release -> start -> health
-> switch -> drain -> stop old -> clean up. Until the switch, any failure
destroys the new instance and leaves the front-end alone, so the old version
keeps serving. The app's state (``var/apps/APP.json``) is saved before nginx
is reloaded, so an interrupted deploy never leaves nginx routing to an
instance sarge does not know as current or kept; the next deploy of the app
removes whatever an interrupted one left.
"""

from __future__ import annotations

import contextlib
import os
import time

from . import build, environ, health, unpack, users
from .apps import (
    AppState,
    check_path,
    check_timeout,
    listen_port,
    load_state,
    load_states,
    parse_listen,
)
from .errors import (
    BuildError,
    DeployError,
    HomeError,
    InstanceNotFound,
    SargeError,
    UsageError,
)
from .files import locked, write_file
from .frontend import Frontend
from .instance import check_app_name
from .ports import check_holder, check_unix_holder
from .render import File

_DEAD_STATES = {"BACKOFF", "FATAL", "EXITED", "STOPPED", "UNKNOWN"}


def can_bind(listen: str) -> bool:
    """True when nothing listens on the front-end address ``listen`` yet."""
    from .ports import can_bind as free

    return free(listen.rpartition(":")[0].strip("[]"), listen_port(listen))


def _reason(exc) -> str:
    """Why a step failed, on one line: an OSError says what and on which file."""
    if isinstance(exc, SargeError):
        reason = str(exc)
        if isinstance(exc.__cause__, SargeError):
            reason += f": {exc.__cause__}"
        return reason
    if isinstance(exc, OSError) and exc.strerror:
        files = [f for f in (exc.filename, exc.filename2) if f is not None]
        return exc.strerror + "".join(f": {f}" for f in files)
    return f"{type(exc).__name__}: {exc}"


class Deployer:
    """Deploys, routes and rolls back the apps of ``home``.

    ``progress(step, seconds, detail)`` is told of each finished step;
    ``frontend`` and ``environments`` default to the home's nginx and
    ``var/envs``; ``can_bind`` checks a new front-end address; ``check_holder``
    (:func:`sarge.ports.check_holder`) proves an instance's port is its own. ``fault`` names
    a point where sarge kills itself with SIGKILL, for the fault-injection
    tests: a step's name (killed as it starts), ``environment:install`` or
    ``switch:reload`` (after the app's state is saved, before nginx reloads).
    """

    def __init__(self, home, *, progress=None, frontend=None, environments=None,
                 clock=time.monotonic, can_bind=can_bind, check_holder=check_holder,
                 fault=None):
        self.home = home
        self.check_holder = check_holder
        self.fault = fault
        self.progress = progress or (lambda step, seconds, detail: None)
        self.clock = clock
        self.can_bind = can_bind
        self._frontend = frontend
        self._environments = environments

    @property
    def frontend(self):
        if self._frontend is None:
            self._frontend = Frontend(self.home, self.home.supervisor, self.home.settings)
        return self._frontend

    @property
    def environments(self):
        if self._environments is None:
            self._environments = build.Environments.of(
                self.home.envs_dir, self.home.settings, self.home.python)
        return self._environments

    # -- steps, state and locks --------------------------------------------------------------

    def _fault_point(self, name):
        if self.fault == name:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

    @contextlib.contextmanager
    def _step(self, name):
        self._fault_point(name)
        detail = {}
        start = self.clock()
        try:
            yield detail
        except (SargeError, OSError) as exc:  # an OSError too: its step, not 'deploy'
            exc.step = getattr(exc, "step", name)
            raise
        self.progress(name, self.clock() - start, detail.get("detail", ""))

    @contextlib.contextmanager
    def app_lock(self, app):
        """Hold the app's deploy lock, or refuse at once when another deploy holds it."""
        try:
            with locked(self.home.deploy_lock_path(app), blocking=False):
                yield
        except BlockingIOError:
            raise DeployError(f"another deploy, route or rollback of {app} is running; "
                              "try again when it has finished") from None

    def state(self, app) -> AppState:
        return load_state(self.home.app_state_path(app), app)

    def states(self) -> list:
        return load_states(self.home.apps_dir)

    def _save(self, state: AppState) -> None:
        write_file(File(self.home.app_state_path(state.name), state.to_json()))

    def _routes(self) -> list:
        """Every app's route, from the states on disk (the caller saved its own first)."""
        routes = []
        for state in self.states():
            if state.current and state.listen:
                try:
                    instance = self.home.get(state.current)
                except InstanceNotFound:
                    continue  # removed by hand: leave that app out rather than fail all
                routes.append({"app": state.name, "instance": instance.id,
                               "listen": state.listen, "port": instance.port,
                               "socket": self.home.app_socket(instance.id)
                               if instance.unix_socket else None})
        return routes

    def _switch(self, old: AppState, new: AppState):
        """Save ``new`` and point the front-end at its current instance; all of it under the
        front-end's lock, so that a concurrent deploy of another app never loads routes
        read before this one saved its state."""
        with self.frontend.lock():
            self._save(new)
            self._fault_point("switch:reload")
            try:
                return self.frontend.apply(self._routes())
            except BaseException:
                self._save(old)
                raise

    def _died(self, instance_id):
        """None while the instance's processes live, else what happened to them."""
        from .logs import tail

        for process in self.home.get(instance_id).processes:
            info = self.home.supervisor.process(f"{instance_id}:{process}")
            if info is None or info["statename"] in _DEAD_STATES:
                status = info["exitstatus"] if info else "?"
                last = " | ".join(tail(self.home.log_path(instance_id, process), 1))
                return (f"its {process} process exited (exit status {status}) before it "
                        f"answered the health check" + (f"; it said: {last}" if last else ""))
        return None

    def _health_check(self, instance, state: AppState) -> None:
        """The step before any switch: wait until ``instance`` answers ``state``'s check,
        then prove that what answered is the instance's own process tree (a local user
        may have bound its port first)."""
        socket = self.home.app_socket(instance.id) if instance.unix_socket else None
        with self._step("health check") as step:
            seconds = health.wait_ready(socket or instance.port, state.check, state.timeout,
                                        alive=lambda: self._died(instance.id), clock=self.clock)
            if socket:
                check_unix_holder(socket, self._pids(instance), instance.id)
            else:
                self.check_holder(instance.port, self._pids(instance), instance.id)
            step["detail"] = f"GET {state.check} answered after {seconds:.2f}s"

    def _pids(self, instance) -> set:
        """The pids of the instance's processes and their descendants."""
        from .processes import tree_pids

        infos = [self.home.supervisor.process(f"{instance.id}:{p}") for p in instance.processes]
        return tree_pids(info["pid"] for info in infos if info)

    # -- deploy ------------------------------------------------------------------------------

    def deploy(self, source, app, *, listen=None, check=None, timeout=None):
        """Deploy ``source`` (a folder or a tar archive) as the new version of ``app``."""
        self.home.check()
        check_app_name(app)
        source = os.path.abspath(source)
        unpack.source_kind(source)  # refuse what is not a source before making anything
        listen = parse_listen(listen) if listen is not None else None
        check = check_path(check) if check is not None else None
        timeout = check_timeout(timeout) if timeout is not None else None
        self._plan(app, listen, check, timeout)  # refuse bad input before taking any lock
        run_as = environ.run_as(self.home, app)  # and a user the app cannot run as
        self.frontend.check_user()
        self.home.supervisor.processes()  # supervisord must be running: say so now
        with self.app_lock(app):
            old, state = self._plan(app, listen, check, timeout)
            self._clean(old, keep_all_previous=True)
            self.home.log_action("deploy", f"{app} from {source}")
            with self._step("new instance") as step:
                instance = self.home.new(app, origin="deploy")
                step["detail"] = f"{instance.id}, port {instance.port}"
            try:
                instance = self._build_and_start(instance, source, state, run_as)
                new = state.replace(
                    current=instance.id,
                    previous=((old.current,) if old.current else ()) + old.previous)
                with self._step("switch") as step:
                    drain = self._switch(old, new)
                    step["detail"] = f"{state.listen} -> " + (
                        f"unix:{self.home.app_socket(instance.id)}" if instance.unix_socket
                        else f"127.0.0.1:{instance.port}")
            except BaseException as exc:
                raise self._abandon(instance.id, exc) from exc
            self._finish(old.current, new, drain)
        self.home.log_action("deployed", f"{app} {instance.id}")
        return self.home.get(instance.id)

    def _plan(self, app, listen, check, timeout):
        """The app's state now, and as this deploy will leave it; refuse what cannot be."""
        old = self.state(app)
        state = old.replace(listen=listen or old.listen, check=check or old.check,
                            timeout=timeout or old.timeout)
        if state.listen is None:
            raise UsageError(f"the first deploy of {app} needs --listen HOST:PORT, the "
                             "address its front-end listens on")
        self._check_listen(state, old)
        return old, state

    def _check_listen(self, state, old):
        port = listen_port(state.listen)
        settings = self.home.settings
        if settings.port_first <= port <= settings.port_last:
            raise UsageError(f"--listen {state.listen}: port {port} is in the range the home "
                             f"gives its instances ({settings.port_first}-{settings.port_last})"
                             "; choose a port outside it")
        for other in self.states():
            if other.name != state.name and other.listen and listen_port(other.listen) == port:
                raise UsageError(f"--listen {state.listen}: port {port} is already the "
                                 f"front-end of the app {other.name}")
        if state.listen != old.listen or old.current is None:
            if not self.can_bind(state.listen):
                raise DeployError(f"--listen {state.listen}: something on this machine already "
                                  "listens there")

    def _build_and_start(self, instance, source, state, run_as):
        home = self.home
        folder = home.instance_dir(instance.id)
        log = home.log_path(instance.id)
        environ.freeze_config(home, instance)
        with self._step("unpack") as step:
            unpack.unpack(source, folder)
            users.share_code(folder, run_as)  # readable, not writable, by the app's user
            step["detail"] = os.path.basename(source)
        with self._step("environment") as step:
            processes = build.read_procfile(folder)
            release = processes.pop("release", None)
            requirements = os.path.join(folder, "requirements.txt")
            venv = None
            if os.path.isfile(requirements):
                venv = self.environments.path_for(requirements, run_as)
            instance = home.set_processes(instance.id, processes, venv)  # venv now in use
            if instance.unix_socket and len(os.fsencode(home.app_socket(instance.id))) > 107:
                raise BuildError(f"the web process listens on $SARGE_SOCKET, but the socket "
                                 f"{home.app_socket(instance.id)} would be too long a path "
                                 "(108 bytes at most): use $PORT, or a home with a shorter "
                                 "path")
            self._fault_point("environment:install")
            if venv:
                built = self.environments.ensure(
                    venv, requirements, log, user=run_as, cwd=folder,
                    env=environ.build_environment(home, run_as))
                step["detail"] = ("built " if built else "reused ") + os.path.basename(venv)
            else:
                step["detail"] = "no requirements.txt"
        if release:
            with self._step("release") as step:
                command = environ.run_command(home, instance.id, ["/bin/sh", "-c", release])
                try:
                    command.prepare()
                    build.run_logged(command.argv, log, **command.popen_kwargs())
                except SargeError as exc:
                    raise DeployError(f"the release command `{release}` failed") from exc
                step["detail"] = release
        with self._step("start") as step:
            home.start(instance.id, wait=False)
            step["detail"] = ", ".join(sorted(processes))
        self._health_check(instance, state)
        return instance

    def _abandon(self, instance_id, exc) -> BaseException:
        """Destroy a new instance that failed; return the error to raise."""
        from .logs import tail

        lines = tail(self.home.log_path(instance_id), 10)
        with contextlib.suppress(SargeError, OSError):
            self.home.destroy(instance_id, by_deploy=True)
        if not isinstance(exc, Exception):
            return exc  # KeyboardInterrupt and the like: the new instance is gone, stop here
        step = getattr(exc, "step", "deploy")
        message = (f"deploy failed at step '{step}': {_reason(exc)}. The new instance "
                   f"{instance_id} was removed; the current version keeps serving.")
        if lines:
            message += "\nLast lines of its log:\n" + "\n".join("  " + line for line in lines)
        error = DeployError(message)
        error.step = step
        return error

    def _finish(self, old_current, new, drain):
        """After a switch: drain, stop the instance that served before, clean up."""
        with self._step("drain") as step:
            drained = self.frontend.drain(drain)
            step["detail"] = "old nginx workers gone" if drained else "timed out"
        if old_current and old_current != new.current:
            with self._step("stop old") as step:
                self.home.stop(old_current)
                step["detail"] = old_current
        with self._step("clean up") as step:
            removed = self._clean(new)
            step["detail"] = f"removed {', '.join(removed)}" if removed else "nothing to remove"

    def _clean(self, state: AppState, keep_all_previous: bool = False) -> list:
        """Destroy the app's deploy-made instances that are neither current nor kept; return
        their ids (one not all removed: with a note). After a deploy (not before: a failed
        deploy's environment serves its retry) also remove the environments no instance
        uses."""
        keep = state.previous if keep_all_previous else state.previous[:self.home.settings.keep]
        wanted = {state.current, *keep}
        removed = []
        for instance in self.home.instances():
            if (instance.application_name == state.name and instance.origin == "deploy"
                    and instance.id not in wanted):
                try:
                    self.home.destroy(instance.id, by_deploy=True)
                except HomeError:
                    # What its app's user left cannot all go: its record stays, the next
                    # clean-up tries again, and this deploy goes on.
                    removed.append(f"{instance.id} (not all of it: `sarge HOME destroy "
                                   f"{instance.id}` says what is left)")
                    continue
                removed.append(instance.id)
        if keep_all_previous:
            return removed
        if tuple(keep) != state.previous:
            self._save(state.replace(previous=tuple(keep)))
        # Under the home lock: a concurrent deploy records its environment (set_processes)
        # under the same lock, so an environment is never removed between use and record.
        with self.home.lock():
            self.environments.collect(i.virtualenv for i in self.home.instances())
        return removed

    # -- route and rollback ----------------------------------------------------------------------

    def route(self, app, instance_id):
        """Point the front-end of ``app`` at its running instance ``instance_id``."""
        check_app_name(app)
        instance = self.home.get(instance_id)
        if instance.application_name != app:
            raise UsageError(f"{instance.id} is an instance of {instance.application_name}, "
                             f"not of {app}")
        with self.app_lock(app):
            old = self.state(app)
            if old.listen is None:
                raise UsageError(f"{app} has no front-end address yet: deploy it with --listen")
            info = self.home.supervisor.process(instance.id + ":web")
            if info is None or info["statename"] not in ("RUNNING", "STARTING"):
                raise DeployError(f"{instance.id} is not running; start it with "
                                  f"`sarge HOME start {instance.id}` first")
            self._health_check(instance, old)
            previous = tuple(p for p in ((old.current,) if old.current else ()) + old.previous
                             if p != instance.id)
            new = old.replace(current=instance.id, previous=previous)
            with self._step("switch"):
                drain = self._switch(old, new)
            with self._step("drain"):
                self.frontend.drain(drain)
        self.home.log_action("route", f"{app} {instance.id}")
        return instance

    def rollback(self, app):
        """Start the previous instance of ``app``, check it, switch to it, stop the current."""
        self.home.check()
        check_app_name(app)
        with self.app_lock(app):
            old = self.state(app)
            if not old.previous:
                raise DeployError(f"{app} has no previous instance to roll back to")
            target = self.home.get(old.previous[0])
            info = self.home.supervisor.process(target.id + ":web")
            was_running = info is not None and info["statename"] in ("RUNNING", "STARTING")
            try:
                with self._step("start") as step:
                    self.home.start(target.id, wait=False)
                    step["detail"] = target.id
                self._health_check(target, old)
                new = old.replace(
                    current=target.id,
                    previous=((old.current,) if old.current else ()) + old.previous[1:])
                with self._step("switch"):
                    drain = self._switch(old, new)
            except SargeError as exc:
                if not was_running:  # leave it as it was: stopped, and stopped at boot
                    with contextlib.suppress(SargeError):
                        self.home.stop(target.id)
                raise DeployError(f"rollback of {app} to {target.id} failed at step "
                                  f"'{getattr(exc, 'step', 'rollback')}': {exc}. The current "
                                  "version keeps serving.") from exc
            self._finish(old.current, new, drain)
        self.home.log_action("rollback", f"{app} {target.id}")
        return target

    def configure(self, app, assignments=(), unset=()):
        """Change the app's variables and redeploy its current version with them; when the
        redeploy fails, the variables are put back as they were. Returns the new instance."""
        from .environ import configure, load_app_config, save_app_config

        path = self.home.app_config_path(app)
        if self.state(check_app_name(app)).current is None:
            raise DeployError(f"{app} has no current instance to redeploy")
        before = load_app_config(path)
        existed = os.path.exists(path)
        configure(self.home, app, assignments, unset)
        try:
            return self.redeploy(app)
        except BaseException:
            with self.home.lock():
                if existed:
                    save_app_config(path, before)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            raise

    def redeploy(self, app):
        """Deploy the current instance's code again (after a configuration change)."""
        state = self.state(check_app_name(app))
        if state.current is None:
            raise DeployError(f"{app} has no current instance to redeploy")
        return self.deploy(self.home.instance_dir(state.current), app)
