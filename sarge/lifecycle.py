"""An instance's life under supervisord: its program, registration, start, stop, destroy.

Each instance is one supervisord group (``ID``) with a program per process type,
written to ``etc/supervisor.d/ID.conf``. No command reads or rewrites every
instance's program file: ``start`` and ``stop`` flip one file's autostart and
call supervisord directly. Nothing here knows of apps' deploys: which instance
an app serves, and whether it may be destroyed, is :mod:`sarge.deploy`'s.
"""

from __future__ import annotations

import os

from . import ownership, render
from .errors import HomeError, NotStartable, ProcessFailed, SupervisordNotRunning
from .files import File, read_text, write_file
from .instance import Instance, check_app_name, uses_socket
from .logs import tail
from .manifest import Manifest
from .processes import instance_member, reap
from .supervisord import crashmark

_AUTOSTART = {True: "autostart = true\n", False: "autostart = false\n"}


def stop_timeout(declared: Manifest, process: str, settings) -> int:
    """Seconds a process type has to exit once told to stop, before its process group is
    killed: its ``stop_timeout`` in ``sarge-app.toml``, else ``[processes] stopwaitsecs``."""
    timeout = declared.options(process).stop_timeout
    return settings.stopwaitsecs if timeout is None else timeout


class Lifecycle:
    """Starts, stops and destroys the instances of ``home`` (a :class:`~sarge.home.Home`:
    its paths, settings, store, supervisord client, action log and Python)."""

    def __init__(self, home):
        self.home = home
        self.store = home.store

    @property
    def supervisor(self):
        return self.home.supervisor

    # -- programs --------------------------------------------------------------------------

    def new(self, application_name: str, origin: str = "new") -> Instance:
        """Create an instance of ``application_name``: folder, port, program (not started)."""
        home = self.home
        home.check()
        check_app_name(application_name)
        home.settings  # refused settings, or a bad name: before anything is made, even a lock
        with self.store.lock():
            instance = self.store.create(application_name, origin)
            try:
                write_file(self.program_file(instance, autostart=False))
                self._register(instance.id)
            except BaseException:
                self.store.remove(instance.id, instance.port)
                raise
            home.log_action("new", f"{instance.id} port={instance.port}")
        return instance

    def program_file(self, instance: Instance, autostart: bool) -> File:
        """The supervisord program file of ``instance`` (one group, a program per process)."""
        from .commands import module_argv  # here: states() (list, status) never needs it

        home = self.home
        declared = Manifest.from_dict(instance.manifest)
        programs = [
            {"type": process, "program": f"{instance.id}_{process}",
             "command": module_argv(home.python, "sarge.supervisord.launch", home.path,
                                    instance.id, process),
             "log_file": home.log_path(instance.id, process),
             "stop_signal": declared.options(process).stop_signal,
             "stop_timeout": stop_timeout(declared, process, home.settings)}
            for process in sorted(instance.processes, key=lambda p: (p != "web", p))
        ]
        return render.program_conf(
            home.program_path(instance.id), instance=instance, programs=programs,
            # The launcher starts as root: not in the app's folder (it goes there when it
            # execs the app), in the home, which only root can change.
            directory=home.path, settings=home.settings, autostart=autostart)

    def _register(self, instance_id) -> None:
        """Make the instance's program file known to a running supervisord."""
        try:
            self.supervisor.add(instance_id, self.home.program_path(instance_id))
        except SupervisordNotRunning:
            pass  # supervisord reads the program file when it starts

    def set_processes(self, instance_id, processes: dict, virtualenv=None,
                      manifest=None) -> Instance:
        """Give a stopped instance its process types (from a Procfile, scaled:
        :func:`sarge.instance.scaled`), virtualenv and manifest
        (:class:`sarge.manifest.Manifest`, from its ``sarge-app.toml``); a port of the
        home's range for each ``web.N``."""
        with self.store.lock():
            instance = self.store.get(instance_id)
            extra = sum(1 for p in processes if p.startswith("web."))
            ports = instance.ports[:extra]
            allocator = self.store.ports() if len(ports) < extra else None
            ports += tuple(allocator.allocate(instance.id) for _ in range(extra - len(ports)))
            instance = instance.replace(
                processes=dict(processes), virtualenv=virtualenv, ports=ports,
                unix_socket=uses_socket(processes),
                manifest=manifest.to_dict() if manifest is not None else {})
            self.store.save(instance)
            write_file(self.program_file(instance, autostart=False))
            try:
                self.supervisor.remove(instance.id)
            except SupervisordNotRunning:
                return instance
            self._register(instance.id)
        return instance

    def _set_autostart(self, instance: Instance, autostart: bool, tell: bool = True) -> None:
        """Flip autostart in the instance's program file, keeping every other value."""
        path = self.home.program_path(instance.id)
        text = read_text(path)
        wanted = _AUTOSTART[autostart]
        if text is not None and _AUTOSTART[not autostart] in text:
            write_file(File(path, text.replace(_AUTOSTART[not autostart], wanted)))
        elif text is None or wanted not in text:
            write_file(self.program_file(instance, autostart))
        # supervisord compares its configuration with the files on `supervisorctl update`:
        # were it to find autostart changed, it would restart the instance. (Told before a
        # start, supervisord would start a never-started program by itself: start tells it
        # after.)
        if tell:
            self.supervisor.set_autostart(instance.id, autostart)

    def _ensure_known(self, instance_id) -> dict:
        """supervisord's info on the instance's web process, registering its program if needed."""
        info = self.supervisor.process(instance_id + ":web")
        if info is None:
            self.supervisor.add(instance_id, self.home.program_path(instance_id))
            info = self.supervisor.process(instance_id + ":web")
        return info

    # -- start, stop, destroy ----------------------------------------------------------------

    def start(self, instance_id, wait: bool = True, processes=None) -> bool:
        """Start an instance (and mark it to start at boot); False if already running.

        With ``wait``, return once its processes have stayed up startsecs. ``processes``
        names the types to start (default: every one); supervisord is told that the
        instance starts at boot once no type is left unstarted (a program it took for
        autostarted that never ran, it would start by itself).
        """
        home = self.home
        instance = self.store.get(instance_id)
        server = os.path.join(home.instance_dir(instance.id), "server")
        if instance.processes["web"] is None and not (
                os.path.isfile(server) and os.access(server, os.X_OK)):
            raise NotStartable(
                f"{instance.id} has no executable {server}: put the app's start command there "
                "(a script that starts a server on $PORT) and make it executable"
            )
        from .commands import run_as

        user = run_as(home, home.settings, instance.application_name)  # refuses one, now
        ownership.share_code(home.instance_dir(instance.id), user, unless_shared=True)
        with self.store.instance_lock(instance.id):
            self._ensure_known(instance.id)
            self._set_autostart(instance, True, tell=False)
            crashmark.clear(home, instance.id)
            home.log_action("start", instance.id)
            try:
                if processes is None:
                    return self.supervisor.start_group(instance.id, wait=wait)
                return self.supervisor.start_processes(instance.id, processes, wait=wait)
            except ProcessFailed as exc:
                last = " | ".join(tail(home.log_path(instance.id), 3)) or "(empty)"
                raise ProcessFailed(
                    f"{exc}; supervisord retries it {home.settings.startretries} times, then "
                    f"marks it FATAL. Its log ends with: {last[-300:]}"
                ) from exc
            finally:
                if processes is None or self._all_started(instance, processes):
                    self.supervisor.set_autostart(instance.id, True)

    def _all_started(self, instance: Instance, started) -> bool:
        """Whether no process of the instance but ``started`` is one supervisord would
        start by itself once told of autostart: STOPPED and never started."""
        rest = set(instance.processes) - set(started)
        infos = [self.supervisor.process(f"{instance.id}:{p}") for p in rest]
        return not any(info is None or (info["statename"] == "STOPPED" and not info["start"])
                       for info in infos)

    def stop(self, instance_id, processes=None) -> bool:
        """Stop an instance gracefully, and keep it stopped at boot; False if it was not
        running. ``processes`` names the types to stop instead of all (the instance's
        start at boot left as it is).

        Each type gets its stop signal (``sarge-app.toml``, default SIGTERM) in its main
        process alone, and its whole process group SIGKILL if it has not exited within its
        stop timeout (supervisord's stopwaitsecs, killasgroup). What the main process left
        in its group when it exited gets SIGTERM then, and SIGKILL after the same timeout.
        """
        instance = self.store.get(instance_id)
        with self.store.instance_lock(instance.id):
            self._ensure_known(instance.id)
            if processes is None:
                self._set_autostart(instance, False)
            self.home.log_action("stop", instance.id + (
                "" if processes is None else ":" + ",".join(processes)))
            return self._stop(instance, instance.processes if processes is None else processes)

    def _stop(self, instance: Instance, processes) -> bool:
        stopped = self.supervisor.stop_group(instance.id, processes)
        declared = Manifest.from_dict(instance.manifest)
        for process in processes:
            reap(self.home.pid_path(instance.id, process), instance_member(instance.id),
                 timeout=stop_timeout(declared, process, self.home.settings))
        return stopped

    def restart(self, instance_id) -> None:
        """Stop, then start an instance."""
        self.stop(instance_id)
        self.start(instance_id)

    def destroy(self, instance) -> None:
        """Stop ``instance`` and remove its program, folder, logs, port and record.

        :class:`HomeError` when something its app's user left cannot be removed: all
        the rest is, the record and port are kept (:meth:`InstanceStore.remove`), and a
        destroy run again finishes the job. Whether an instance may be destroyed at all
        (not the one an app serves) is the caller's to decide.
        """
        with self.store.instance_lock(instance.id):
            self._stop(instance, instance.processes)
            self.supervisor.remove(instance.id)
            with self.store.lock():
                left = self.store.remove(instance.id, instance.port)
                self.home.log_action("destroy", instance.id + (" unfinished" if left else ""))
        if left:
            more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
            raise HomeError(
                f"{instance.id} is not destroyed: {left[0].path} could not be removed "
                f"({left[0].reason}){more}; the rest is gone, its record and port stay. "
                f"Remove that by hand (rm -rf), then run `sarge HOME destroy {instance.id}` "
                "again")

    def states(self):
        """supervisord's info for every program, by name, or None when it is not running."""
        try:
            return self.supervisor.processes()
        except SupervisordNotRunning:
            return None
