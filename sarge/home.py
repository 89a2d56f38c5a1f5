"""The home folder: its layout, ``init``, the lock, and the instance lifecycle.

::

    HOME/
      etc/sarge.toml            settings (written once, the operator's to edit)
      etc/supervisord.conf      the home's supervisord (generated)
      etc/supervisor.d/ID.conf  one program per instance (generated)
      etc/apps/APP.json         an app's environment variables (0600)
      var/log/                  supervisord.log, sarge.log (every action), ID.log
      var/run/                  supervisord.pid, supervisord.sock, sarge.lock (0700)
      var/runtime/ID/           an instance's XDG_RUNTIME_DIR (its app user's)
      var/data/APP/             persistent data, shared by an app's instances
      var/instances/ID.json     the record of each instance
      var/ports/PORT            a link naming the instance that holds PORT
      bin/                      sarge, supervisord, supervisorctl bound to this home
      ID/                       an instance's folder (its code and ``server``)

Mutating commands hold ``var/run/sarge.lock`` (and, for start and stop, a
lock on the instance's record), so concurrent commands never interleave.
State files are written atomically.  No command reads or rewrites every
instance's program file: ``start`` and ``stop`` flip one file's autostart and
call supervisord directly; ``list`` asks supervisord once.
"""

from __future__ import annotations

import contextlib
import os
import sys

from . import render, users
from .environ import run_as
from .errors import (
    HomeError,
    InstanceNotFound,
    NotStartable,
    ProcessFailed,
    SupervisordNotRunning,
    UsageError,
)
from .files import locked, read_text, remove_tree, write_file
from .instance import Instance, check_app_name, check_id, new_id, utcnow
from .layout import Layout, check_not_world_writable
from .supervisord import crashmark
from .supervisord.launch import module_argv

#: A unix socket path longer than this cannot be bound (sun_path is 108 bytes).
MAX_SOCKET_PATH = 107

_AUTOSTART = {True: "autostart = true\n", False: "autostart = false\n"}


class Home(Layout):
    """A sarge home folder at ``path``.

    ``supervisor`` is the supervisord client (default: one on the home's
    socket); ``python`` the interpreter the ``bin/`` shortcuts and the
    launcher run; ``port_is_free`` checks a port before it is handed out.
    """

    def __init__(self, path, *, supervisor=None, python: str = sys.executable,
                 port_is_free=None):
        super().__init__(path)
        self.python = python
        self.port_is_free = port_is_free
        self._supervisor = supervisor
        self._settings = None

    # -- set-up -------------------------------------------------------------------------

    @property
    def supervisor(self):
        if self._supervisor is None:
            from .supervisord.client import Supervisor

            self._supervisor = Supervisor(
                self.socket_path, hint=f"start it with {self._p('bin', 'supervisord')}"
            )
        return self._supervisor

    @property
    def settings(self):
        if self._settings is None:
            from . import config

            self._settings = config.load(self.settings_path)
        return self._settings

    def init(self, user: str = "") -> list:
        """Create the home, or complete it; return the paths created or updated.

        ``user`` is written to a new ``sarge.toml`` as ``[users] default``.
        """
        if user:
            # a new sarge.toml leaves [users] frontend to its default, nobody
            users.check_apart(users.lookup(user, "--user"), "[users] default",
                              [(users.FRONTEND, "nobody")], "--user")
            if self.is_initialized() and self.settings.user != user:
                raise HomeError(f"{self.settings_path} exists and names the user "
                                f"{self.settings.user or 'none'}; edit [users] default "
                                "there instead")
        try:
            return self._init(user)
        except OSError as exc:
            raise HomeError(f"cannot initialize {self.path}: {exc.strerror} "
                            f"({exc.filename or self.path})") from exc

    def _init(self, user: str) -> list:
        """The work of :meth:`init`. Existing files are kept: ``sarge.toml`` is never
        rewritten, generated files only when sarge would generate them differently."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise HomeError(f"{self.path} exists and is not a folder")
        if os.path.isdir(self.path):
            check_not_world_writable(self.path)
        if not self.is_initialized() and os.path.isdir(self.path) and os.listdir(self.path):
            raise HomeError(
                f"{self.path} is not empty and not a sarge home; choose a new or empty folder"
            )
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise HomeError(
                f"{self.path} is too long a path for a home: its supervisord socket "
                f"{self.socket_path} would exceed {MAX_SOCKET_PATH} bytes"
            )
        from . import config

        # Render first: a path that cannot be written safely is refused before anything exists.
        files = self.generated_files()
        changed = []
        folders = [
            # what names an instance's port is private: a local user who knew the next
            # one could bind it first (sarge checks who holds it, all the same)
            ("", 0o755), ("etc", 0o755), ("etc/supervisor.d", 0o700), ("etc/apps", 0o700),
            ("var", 0o755), ("var/log", 0o750), ("var/run", 0o700), ("var/runtime", 0o711),
            ("var/data", 0o755), ("var/instances", 0o700), ("var/ports", 0o700),
            ("var/apps", 0o755), ("var/envs", 0o755), ("var/nginx", 0o755), ("etc/nginx", 0o755),
            ("var/cache", 0o711), ("var/sockets", 0o711),
            ("bin", 0o755),
        ]
        for name, mode in folders:
            path = self._p(name) if name else self.path
            try:
                os.makedirs(path, mode)
                changed.append(path)
            except FileExistsError:
                pass
            if mode != 0o755:
                os.chmod(path, mode)  # private even when the folder already existed
        for file in files:
            if read_text(file.path) != file.text:
                write_file(file)
                changed.append(file.path)
        if not os.path.exists(self.settings_path):
            # Last: its presence is what marks the home as initialized.
            write_file(render.settings_file(self.settings_path, config.Settings(user=user)))
            changed.append(self.settings_path)
        if changed:
            self.log_action("init", "; ".join(os.path.relpath(p, self.path) for p in changed))
        return changed

    def generated_files(self) -> list:
        """The files sarge generates for the home (``supervisord.conf``, ``bin/*``), as they
        should be."""
        return [
            render.supervisord_conf(
                self.supervisord_conf, home=self.path, socket=self.socket_path,
                pidfile=self.pidfile, log_dir=self.log_dir, python=self.python,
            ),
            render.wrapper(self._p("bin", "sarge"), home=self.path,
                           argv=module_argv(self.python, "sarge", self.path)),
            render.wrapper(self._p("bin", "supervisord"), home=self.path,
                           argv=module_argv(self.python, "supervisor.supervisord",
                                            "-c", self.supervisord_conf)),
            render.wrapper(self._p("bin", "supervisorctl"), home=self.path,
                           argv=module_argv(self.python, "supervisor.supervisorctl",
                                            "-c", self.supervisord_conf)),
        ]

    def logrotate(self) -> str:
        """A logrotate snippet for this home's logs."""
        self.check()
        return render.logrotate(home=self.path, log_dir=self.log_dir,
                                supervisord_pid=self.pidfile,
                                nginx_pid=self.nginx_pidfile)

    # -- locks and the action log ----------------------------------------------------------

    def lock(self):
        """Hold the home-wide lock (``var/run/sarge.lock``)."""
        return locked(self._p("var", "run", "sarge.lock"))

    @contextlib.contextmanager
    def instance_lock(self, instance_id):
        """Hold the lock of one instance (on its record); raise if it is gone meanwhile."""
        path = self.record_path(check_id(instance_id))
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(locked(path, create=False))
            except FileNotFoundError:
                raise InstanceNotFound(instance_id) from None
            if not os.path.exists(path):  # destroyed while we waited
                raise InstanceNotFound(instance_id)
            yield

    def log_action(self, action: str, detail: str = "") -> None:
        """Append one line to ``var/log/sarge.log``: when, who, what."""
        line = f"{utcnow()} pid={os.getpid()} uid={os.getuid()} {action} {detail}".rstrip()
        fd = os.open(self._p("var", "log", "sarge.log"),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        finally:
            os.close(fd)

    # -- instances ------------------------------------------------------------------------

    def get(self, instance_id) -> Instance:
        """The instance with this id, or :class:`InstanceNotFound`."""
        self.check()
        path = self.record_path(check_id(instance_id))
        text = read_text(path)
        if text is None:
            raise InstanceNotFound(instance_id)
        return Instance.from_json(text, path)

    def instances(self) -> list:
        """Every instance of the home, oldest first."""
        self.check()
        found = []
        folder = self._p("var", "instances")
        for name in os.listdir(folder):
            if name.endswith(".json") and not name.startswith("."):
                text = read_text(os.path.join(folder, name))
                if text is not None:
                    found.append(Instance.from_json(text, os.path.join(folder, name)))
        return sorted(found, key=lambda i: (i.created, i.id))

    def new(self, application_name: str, origin: str = "new") -> Instance:
        """Create an instance of ``application_name``: folder, port, program (not started)."""
        self.check()
        check_app_name(application_name)
        settings = self.settings
        with self.lock():
            instance_id = self._make_folder(application_name)
            port = None
            try:
                port = self._ports(settings).allocate(instance_id)
                instance = Instance(instance_id, application_name, port, utcnow(), origin=origin)
                os.makedirs(self.data_dir(application_name), exist_ok=True)
                os.makedirs(self.state_dir(instance_id), 0o700, exist_ok=True)
                write_file(render.File(self.record_path(instance_id), instance.to_json()))
                write_file(self.program_file(instance, autostart=False))
                self._register(instance_id)
            except BaseException:
                self._remove_files(instance_id, port)
                raise
            self.log_action("new", f"{instance_id} port={port}")
        return instance

    def _make_folder(self, application_name) -> str:
        for _ in range(100):
            instance_id = new_id(application_name)
            try:
                # As root, private until start or deploy shares it with the app's user.
                os.mkdir(self.instance_dir(instance_id), 0o700 if os.geteuid() == 0 else 0o755)
                return instance_id
            except FileExistsError:
                continue
        raise HomeError(f"could not find a free id for {application_name}")  # pragma: no cover

    def _ports(self, settings):
        from .ports import Ports

        return Ports(self._p("var", "ports"), settings.port_first, settings.port_last,
                     is_free=self.port_is_free,
                     owner_exists=lambda owner: os.path.exists(self.record_path(owner)),
                     settings_path=self.settings_path)

    def _register(self, instance_id) -> None:
        """Make the instance's program file known to a running supervisord."""
        try:
            self.supervisor.add(instance_id, self.program_path(instance_id))
        except SupervisordNotRunning:
            pass  # supervisord reads the program file when it starts

    def program_file(self, instance: Instance, autostart: bool) -> render.File:
        """The supervisord program file of ``instance`` (one group, a program per process)."""
        programs = [
            {"type": process, "program": f"{instance.id}_{process}",
             "command": module_argv(self.python, "sarge.supervisord.launch", self.path,
                                    instance.id, process),
             "log_file": self.log_path(instance.id, process)}
            for process in sorted(instance.processes, key=lambda p: (p != "web", p))
        ]
        return render.program_conf(
            self.program_path(instance.id),
            instance=instance,
            programs=programs,
            # The launcher starts as root: not in the app's folder (it goes there when it
            # execs the app), in the home, which only root can change.
            directory=self.path,
            settings=self.settings,
            autostart=autostart,
        )

    def set_processes(self, instance_id, processes: dict, virtualenv=None) -> Instance:
        """Give a stopped instance its process types (from a Procfile) and virtualenv."""
        from .instance import uses_socket

        with self.lock():
            instance = self.get(instance_id).replace(
                processes=dict(processes), virtualenv=virtualenv,
                unix_socket=uses_socket(processes))
            write_file(render.File(self.record_path(instance.id), instance.to_json()))
            write_file(self.program_file(instance, autostart=False))
            try:
                self.supervisor.remove(instance.id)
            except SupervisordNotRunning:
                return instance
            self._register(instance.id)
        return instance

    def _set_autostart(self, instance: Instance, autostart: bool, tell: bool = True) -> None:
        """Flip autostart in the instance's program file, keeping every other value."""
        path = self.program_path(instance.id)
        text = read_text(path)
        wanted = _AUTOSTART[autostart]
        if text is not None and _AUTOSTART[not autostart] in text:
            write_file(render.File(path, text.replace(_AUTOSTART[not autostart], wanted)))
        elif text is None or wanted not in text:
            write_file(self.program_file(instance, autostart))
        # supervisord compares its configuration with the files on `supervisorctl update`:
        # were it to find autostart changed, it would restart the instance. (Told before a
        # start, supervisord would start a never-started program by itself: start tells it
        # after.)
        if tell:
            self.supervisor.set_autostart(instance.id, autostart)

    def _remove_files(self, instance_id, port=None) -> list:
        """Remove what an instance left on disk, its record last; each step may be redone.

        Return what could not be removed (:func:`~sarge.files.remove_tree`'s report: what
        its app's user made too deep or too big, say): the port and the record are then
        kept, so that the instance is still listed, and a later destroy (or deploy's
        clean-up) finds it and finishes the job."""
        for path in (self.program_path(instance_id), self.instance_config_path(instance_id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        left = []
        for folder in (self.instance_dir(instance_id), self.runtime_dir(instance_id),
                       os.path.dirname(self.app_socket(instance_id)),
                       self.state_dir(instance_id)):
            left += remove_tree(folder)
        folder = self.log_dir
        for name in os.listdir(folder):
            if name.startswith(instance_id + "."):  # ID.log, ID.log.1, ID.worker.log, ...
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))
        if left:
            return left
        if port is not None:
            self._ports(self.settings).release(port, instance_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.record_path(instance_id))
        return []

    def _ensure_known(self, instance_id) -> dict:
        """supervisord's info on the instance's web process, registering its program if needed."""
        info = self.supervisor.process(instance_id + ":web")
        if info is None:
            self.supervisor.add(instance_id, self.program_path(instance_id))
            info = self.supervisor.process(instance_id + ":web")
        return info

    def start(self, instance_id, wait: bool = True) -> bool:
        """Start an instance (and mark it to start at boot); False if already running.

        With ``wait``, return once its processes have stayed up startsecs.
        """
        instance = self.get(instance_id)
        server = os.path.join(self.instance_dir(instance.id), "server")
        if instance.processes["web"] is None and not (
                os.path.isfile(server) and os.access(server, os.X_OK)):
            raise NotStartable(
                f"{instance.id} has no executable {server}: put the app's start command there "
                "(a script that starts a server on $PORT) and make it executable"
            )
        user = run_as(self, instance.application_name)  # refuses a user it cannot be, now
        users.share_code(self.instance_dir(instance.id), user, unless_shared=True)
        with self.instance_lock(instance.id):
            self._ensure_known(instance.id)
            self._set_autostart(instance, True, tell=False)
            crashmark.clear(self, instance.id)
            self.log_action("start", instance.id)
            try:
                return self.supervisor.start_group(instance.id, wait=wait)
            except ProcessFailed as exc:
                from .logs import tail

                last = " | ".join(tail(self.log_path(instance.id), 3)) or "(empty)"
                raise ProcessFailed(
                    f"{exc}; supervisord retries it {self.settings.startretries} times, then "
                    f"marks it FATAL. Its log ends with: {last[-300:]}"
                ) from exc
            finally:
                self.supervisor.set_autostart(instance.id, True)

    def stop(self, instance_id) -> bool:
        """Stop an instance gracefully, and keep it stopped at boot; False if it was not running."""
        instance = self.get(instance_id)
        with self.instance_lock(instance.id):
            self._ensure_known(instance.id)
            self._set_autostart(instance, False)
            self.log_action("stop", instance.id)
            return self.supervisor.stop_group(instance.id, instance.processes)

    def restart(self, instance_id) -> None:
        """Stop, then start an instance."""
        self.stop(instance_id)
        self.start(instance_id)

    def destroy(self, instance_id, *, by_deploy: bool = False) -> None:
        """Stop an instance and remove its program, folder, logs, port and record.

        The instance an app's front-end routes to is refused; one kept for rollback
        is taken off the app's list. A deploy (``by_deploy``) keeps its app's state
        itself, under its own lock. :class:`HomeError` when something its app's user
        left cannot be removed: all the rest is, the record and port are kept
        (:meth:`_remove_files`), and a destroy run again finishes the job.
        """
        instance = self.get(instance_id)
        self.supervisor.process(instance.id + ":web")  # says so, before any lock, if it is down
        if by_deploy:
            return _finished(instance, self._destroy(instance))
        from .apps import load_state

        app = instance.application_name
        # The app's deploy lock (a running deploy of the app is waited for): its state says
        # which instances serve and which are kept.
        with locked(self.deploy_lock_path(app)):
            state = load_state(self.app_state_path(app), app)
            if state.current == instance.id:
                raise HomeError(f"{instance.id} is the instance {app}'s front-end routes "
                                f"to; deploy or route {app} to another one first")
            left = self._destroy(instance)
            if instance.id in state.previous:  # unfinished too: its code and program are gone
                state = state.replace(
                    previous=tuple(p for p in state.previous if p != instance.id))
                write_file(render.File(self.app_state_path(app), state.to_json()))
        _finished(instance, left)

    def _destroy(self, instance) -> list:
        """Stop and remove the instance; return what could not be removed."""
        with self.instance_lock(instance.id):
            self.supervisor.stop_group(instance.id, instance.processes)
            self.supervisor.remove(instance.id)
            with self.lock():
                left = self._remove_files(instance.id, instance.port)
                self.log_action("destroy", instance.id + (" unfinished" if left else ""))
        return left

    def states(self):
        """supervisord's info for every program, by name, or None when it is not running."""
        try:
            return self.supervisor.processes()
        except SupervisordNotRunning:
            return None

    def process_log_path(self, instance_id, process: str = "web") -> str:
        """The log file of one process type of an instance."""
        instance = self.get(instance_id)
        if process not in instance.processes:
            raise UsageError(f"{instance.id} has no process {process!r} "
                             f"(it has: {', '.join(sorted(instance.processes))})")
        return self.log_path(instance.id, process)


def _finished(instance, left) -> None:
    """Raise :class:`HomeError` when a destroy of ``instance`` left something (``left``:
    :func:`~sarge.files.remove_tree`'s report), naming the first and what to do."""
    if not left:
        return
    more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
    raise HomeError(
        f"{instance.id} is not destroyed: {left[0].path} could not be removed "
        f"({left[0].reason}){more}; the rest is gone, its record and port stay. Remove "
        f"that by hand (rm -rf), then run `sarge HOME destroy {instance.id}` again")
