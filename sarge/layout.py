"""Where everything of a home lives: the paths, and nothing else.

:class:`~sarge.home.Home` is a :class:`Layout`; the front-end takes one to
find its files without knowing the rest of the home.
"""

from __future__ import annotations

import os

from .errors import HomeError
from .instance import check_app_name


class Layout:
    """The paths of the home folder at ``path`` (see :mod:`sarge.home`)."""

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))

    def _p(self, *parts) -> str:
        return os.path.join(self.path, *parts)

    @property
    def settings_path(self):
        return self._p("etc", "sarge.toml")

    @property
    def supervisord_conf(self):
        return self._p("etc", "supervisord.conf")

    @property
    def socket_path(self):
        return self._p("var", "run", "supervisord.sock")

    @property
    def pidfile(self):
        return self._p("var", "run", "supervisord.pid")

    @property
    def log_dir(self):
        return self._p("var", "log")

    def program_path(self, instance_id):
        return self._p("etc", "supervisor.d", instance_id + ".conf")

    def record_path(self, instance_id):
        return self._p("var", "instances", instance_id + ".json")

    def instance_dir(self, instance_id):
        return self._p(instance_id)

    def log_path(self, instance_id, process="web"):
        """``var/log/ID.log`` for the web process, ``var/log/ID.TYPE.log`` for the others."""
        suffix = ".log" if process == "web" else f".{process}.log"
        return self._p("var", "log", instance_id + suffix)

    def runtime_dir(self, instance_id):
        """The instance's private runtime folder (its ``XDG_RUNTIME_DIR``), owned by the
        user its processes run as."""
        return self._p("var", "runtime", instance_id)

    def state_dir(self, instance_id):
        """sarge's own files about a running instance: its processes' pid files and the
        crash mark (in ``var/run``, which only supervisord's user can enter)."""
        return self._p("var", "run", instance_id)

    def app_socket(self, instance_id):
        """The unix socket an instance's web process may listen on (``$SARGE_SOCKET``), in
        a folder only its user and nginx's workers can enter."""
        return self._p("var", "sockets", instance_id, "web.sock")

    def pid_path(self, instance_id, process):
        return self._p("var", "run", instance_id, f"{process}.pid")

    def crash_path(self, instance_id):
        """Where the crash watch marks an instance it stopped."""
        return self._p("var", "run", instance_id, "crashed.json")

    def data_dir(self, application_name):
        return self._p("var", "data", application_name)

    def app_config_path(self, application_name):
        return self._p("etc", "apps", check_app_name(application_name) + ".json")

    def instance_config_path(self, instance_id):
        """The app's variables as a deploy gave them to this instance (0600)."""
        return self._p("etc", "apps", "instances", instance_id + ".json")

    @property
    def apps_dir(self):
        """``var/apps``: one deploy state per app."""
        return self._p("var", "apps")

    def deploy_lock_path(self, application_name):
        """The lock a deploy, route or rollback of the app holds."""
        return self._p("var", "run", f"deploy-{check_app_name(application_name)}.lock")

    @property
    def frontend_lock_path(self):
        return self._p("var", "run", "frontend.lock")

    @property
    def nginx_pidfile(self):
        return self._p("var", "nginx", "nginx.pid")

    def app_state_path(self, application_name):
        return self._p("var", "apps", check_app_name(application_name) + ".json")

    @property
    def envs_dir(self):
        return self._p("var", "envs")

    def cache_dir(self, user_name):
        """The installers' cache of one app user (``var/cache/USER``, the user's, 0700)."""
        return self._p("var", "cache", user_name)

    @property
    def build_env_path(self):
        """Variables for the installers alone (an index's credentials): ``etc/build.env``."""
        return self._p("etc", "build.env")

    @property
    def nginx_prefix(self):
        return self._p("var", "nginx")

    @property
    def nginx_conf(self):
        return self._p("etc", "nginx", "nginx.conf")

    @property
    def nginx_sites(self):
        return self._p("etc", "nginx", "sites.conf")

    @property
    def nginx_program(self):
        return self._p("etc", "supervisor.d", "nginx.conf")

    def is_initialized(self) -> bool:
        return os.path.isfile(self.settings_path)

    def check(self) -> None:
        """Raise :class:`HomeError` unless this is an initialized home that only its owner
        can change."""
        if not self.is_initialized():
            raise HomeError(
                f"{self.path} is not a sarge home; create it with `sarge {self.path} init`"
            )
        check_not_world_writable(self.path)


def check_not_world_writable(path) -> None:
    """Refuse a home anyone can write to: anyone could then change what it runs."""
    import stat

    if stat.S_IMODE(os.stat(path).st_mode) & stat.S_IWOTH:
        raise HomeError(f"{path} is writable by every user, so anyone could change what it "
                        f"runs; sarge refuses to use it. Fix it with: chmod o-w {path}")
