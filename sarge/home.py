"""The home folder: ``init``, its settings, its lock and its action log.

The layout is :mod:`sarge.layout`'s (``docs/home.rst`` draws it); the instances
are the store's (:mod:`sarge.instances`) and their life under supervisord the
lifecycle's (:mod:`sarge.lifecycle`), both reached from here. Mutating commands
hold ``var/run/sarge.lock`` (and, for start, stop and destroy, the instance's
own lock), so concurrent commands never interleave; state files are written
atomically.
"""

from __future__ import annotations

import os
import sys

from . import config, render
from .errors import HomeError, UsageError
from .files import locked, read_text, write_file
from .instance import utcnow
from .instances import InstanceStore
from .layout import FOLDERS, Layout, check_not_world_writable
from .supervisord.client import Supervisor

#: A unix socket path longer than this cannot be bound (sun_path is 108 bytes).
MAX_SOCKET_PATH = 107


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
        self._store = None
        self._lifecycle = None

    # -- set-up -------------------------------------------------------------------------

    @property
    def supervisor(self):
        if self._supervisor is None:
            self._supervisor = Supervisor(
                self.socket_path, hint=f"start it with {self.bin_path('supervisord')}"
            )
        return self._supervisor

    @property
    def settings(self):
        if self._settings is None:
            self._settings = config.load(self.settings_path)
        return self._settings

    def init(self, user: str = "", python: str = "") -> list:
        """Create the home, or complete it; return the paths created or updated.

        ``user`` is written to a new ``sarge.toml`` as ``[users] default``, ``python`` as
        ``[deploy] python``; that user must be able to run the apps' Python (that one,
        else sarge's own).
        """
        from . import users  # here, as pythons and commands: only init needs them

        initialized = self.is_initialized()
        if python:
            if config.check_python(python) or not os.access(python, os.X_OK):
                raise UsageError(f"--python {python}: not the absolute path of a program")
            if initialized and self.settings.python != python:
                raise HomeError(f"{self.settings_path} exists and names the Python "
                                f"{self.settings.python or 'sarge runs with'}; edit "
                                "[deploy] python there instead")
        if user:
            run_as = users.lookup(user, "--user")
            # a new sarge.toml leaves [users] frontend to its default, nobody
            users.check_apart(run_as, "[users] default", [(users.FRONTEND, "nobody")],
                              "--user")
            if initialized and self.settings.user != user:
                raise HomeError(f"{self.settings_path} exists and names the user "
                                f"{self.settings.user or 'none'}; edit [users] default "
                                "there instead")
            self._check_python(run_as, python)
        try:
            return self._init(user, python)
        except OSError as exc:
            raise HomeError(f"cannot initialize {self.path}: {exc.strerror} "
                            f"({exc.filename or self.path})") from exc

    def _check_python(self, run_as, python: str) -> None:
        """Refuse a ``run_as`` who cannot run the apps' Python (before anything is made)."""
        from . import pythons

        if python:
            pythons.check_runnable(python, "--python", run_as,
                                   "choose one every user can run")
        elif self.is_initialized() and self.settings.python:
            pythons.check_runnable(self.settings.python, "[deploy] python", run_as,
                                   pythons.fix_hint(self.settings_path))
        else:
            pythons.check_runnable(
                self.python, "sarge's own, which makes the apps' virtualenvs", run_as,
                f"add --python {pythons.every_users()} (a Python every user can run, "
                "written as [deploy] python)")

    def _init(self, user: str, python: str = "") -> list:
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
        # Render first: a path that cannot be written safely is refused before anything exists.
        files = self.generated_files()
        changed = []
        for folder in FOLDERS:
            path = self.folder(folder.name)
            try:
                os.makedirs(path, folder.mode)
                changed.append(path)
            except FileExistsError:
                pass
            if folder.mode != 0o755:
                os.chmod(path, folder.mode)  # private even when the folder already existed
        for file in files:
            if read_text(file.path) != file.text:
                write_file(file)
                changed.append(file.path)
        if not os.path.exists(self.settings_path):
            # Last: its presence is what marks the home as initialized.
            write_file(render.settings_file(self.settings_path,
                                            config.Settings(user=user, python=python)))
            changed.append(self.settings_path)
        if changed:
            self.log_action("init", "; ".join(os.path.relpath(p, self.path) for p in changed))
        return changed

    def generated_files(self) -> list:
        """The files sarge generates for the home (``supervisord.conf``, ``bin/*``), as they
        should be."""
        from .commands import module_argv

        return [
            render.supervisord_conf(
                self.supervisord_conf, home=self.path, socket=self.socket_path,
                pidfile=self.pidfile, log_dir=self.log_dir, python=self.python,
            ),
            render.wrapper(self.bin_path("sarge"), home=self.path,
                           argv=module_argv(self.python, "sarge", self.path)),
            render.wrapper(self.bin_path("supervisord"), home=self.path,
                           argv=module_argv(self.python, "supervisor.supervisord",
                                            "-c", self.supervisord_conf)),
            render.wrapper(self.bin_path("supervisorctl"), home=self.path,
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
        return locked(self.home_lock_path)

    def log_action(self, action: str, detail: str = "") -> None:
        """Append one line to ``var/log/sarge.log``: when, who, what."""
        line = f"{utcnow()} pid={os.getpid()} uid={os.getuid()} {action} {detail}".rstrip()
        fd = os.open(self.action_log,
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        finally:
            os.close(fd)

    # -- the instances -----------------------------------------------------------------------

    @property
    def store(self):
        """The instance store (:class:`~sarge.instances.InstanceStore`)."""
        if self._store is None:
            self._store = InstanceStore(self, lambda: self.settings,
                                        port_is_free=self.port_is_free)
        return self._store

    @property
    def lifecycle(self):
        """Start, stop and destroy under supervisord (:class:`~sarge.lifecycle.Lifecycle`)."""
        if self._lifecycle is None:
            from .lifecycle import Lifecycle  # here: commands that only read never need it

            self._lifecycle = Lifecycle(self)
        return self._lifecycle

    def get(self, instance_id):
        """The instance with this id (:meth:`InstanceStore.get`)."""
        return self.store.get(instance_id)

    def instances(self) -> list:
        """Every instance, oldest first (:meth:`InstanceStore.all`)."""
        return self.store.all()
