"""Where everything of a home lives: one table of its folders, the paths, and nothing else.

:data:`~sarge.folders.FOLDERS` (:mod:`sarge.folders`) is the one list of the home's
folders, with their modes and whether an app's user must never be able to change
them (``guarded``: root reads from or runs what is in them) or anything in them
(``guarded_files``).
``init`` makes them from it, the privilege checks (:mod:`sarge.users`) and
``repair`` read it. :class:`Layout` names every path in them; no other module
joins a home's path by hand.
"""

from __future__ import annotations

import os
import stat

from .errors import HomeError
from .folders import FOLDERS, LATER, Folder
from .instance import check_app_name

__all__ = ["FOLDERS", "LATER", "Folder", "Layout", "check_not_world_writable"]


class At:
    """A path of the home by its place in it: ``settings_path = At("etc/sarge.toml")``
    is ``HOME/etc/sarge.toml`` on a :class:`Layout` (a class attribute that reads as one)."""

    def __init__(self, relative: str, doc: str = ""):
        self.parts = tuple(relative.split("/"))
        self.__doc__ = doc or f"``{relative}``."

    def __get__(self, layout, owner=None):
        return self if layout is None else os.path.join(layout.path, *self.parts)


class Layout:
    """The paths of the home folder at ``path`` (see :data:`FOLDERS`)."""

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))

    def _p(self, *parts) -> str:
        return os.path.join(self.path, *parts)

    def folder(self, name: str) -> str:
        """The absolute path of the folder ``name`` of :data:`FOLDERS` (or :data:`LATER`)."""
        return self._p(*name.split("/")) if name else self.path

    def make_later(self, name: str) -> str:
        """Make the folder ``name`` of :data:`LATER` (with its mode) if it is missing;
        return its path."""
        folder = next(f for f in LATER if f.name == name)
        path = self.folder(name)
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, folder.mode)
        return path

    # -- etc/ ------------------------------------------------------------------------------

    settings_path = At("etc/sarge.toml")
    supervisord_conf = At("etc/supervisord.conf")
    programs_dir = At("etc/supervisor.d",
                       "``etc/supervisor.d``: one program file per instance (and nginx's).")

    def program_path(self, instance_id):
        return self._p("etc", "supervisor.d", instance_id + ".conf")

    app_configs_dir = At("etc/apps", "``etc/apps``: each app's variables, ``APP.json`` (0600).")

    def app_config_path(self, application_name):
        return self._p("etc", "apps", check_app_name(application_name) + ".json")

    instance_configs_dir = At("etc/apps/instances")

    def instance_config_path(self, instance_id):
        """The app's variables as a deploy gave them to this instance (0600)."""
        return self._p("etc", "apps", "instances", instance_id + ".json")

    build_env_path = At("etc/build.env",
                         "Variables for the installers alone (an index's credentials).")
    nginx_conf = At("etc/nginx/nginx.conf")
    nginx_sites = At("etc/nginx/sites.conf")
    routes_path = At("etc/nginx/routes.json",
                      "The routes the front-end was last given, as data.")

    def nginx_include_path(self, application_name):
        """``etc/nginx/apps/APP.conf``: the operator's own directives for the app's
        ``server`` blocks; made empty once, never overwritten."""
        return self._p("etc", "nginx", "apps", check_app_name(application_name) + ".conf")

    def tls_dir(self, application_name):
        """``etc/tls/APP``: the app's certificate and key, as sarge copied them."""
        return self._p("etc", "tls", check_app_name(application_name))

    acme_dir = At("var/acme",
                   "``var/acme``: the webroot of ACME's HTTP challenges, for every domain.")

    def front_link(self, application_name, backup: bool = False):
        """``var/front/APP.sock`` (``APP.backup.sock``): the link to the socket of the
        instance that serves the app on ``$SARGE_SOCKET`` (that takes over when it fails)."""
        suffix = ".backup.sock" if backup else ".sock"
        return self._p("var", "front", check_app_name(application_name) + suffix)

    def static_link(self, application_name, prefix: str):
        """``var/front/APP.static.DIGEST``: the link to the current instance's static
        folder of the URL ``prefix``, which nginx serves."""
        import hashlib  # here: of every command, only those with static folders need it

        digest = hashlib.sha256(prefix.encode()).hexdigest()[:12]
        return self._p("var", "front", f"{check_app_name(application_name)}.static.{digest}")

    def maintenance_page(self, application_name):
        return self._p("var", "maintenance", check_app_name(application_name) + ".html")

    nginx_program = At("etc/supervisor.d/nginx.conf")
    service_configs_dir = At("etc/services")

    def service_config_path(self, service_id):
        """A backing service's server configuration: ``etc/services/ID.conf``."""
        return self._p("etc", "services", service_id + ".conf")

    def bin_path(self, name):
        """``bin/sarge``, ``bin/supervisord``, ``bin/supervisorctl``."""
        return self._p("bin", name)

    # -- var/ ------------------------------------------------------------------------------

    socket_path = At("var/run/supervisord.sock")
    pidfile = At("var/run/supervisord.pid")
    home_lock_path = At("var/run/sarge.lock")
    log_dir = At("var/log")
    action_log = At("var/log/sarge.log",
                     "``var/log/sarge.log``: one line per action, and the tracebacks of bugs.")
    history_path = At("var/log/history.jsonl",
                       "``var/log/history.jsonl``: the deploy history (:mod:`sarge.journal`).")
    history_lock_path = At("var/run/history.lock")
    watch_log = At("var/log/nginx-watch.log",
                    "Each answer's status and upstream, for the watch.")
    outbox_dir = At("var/outbox",
                     "``var/outbox``: notifications not delivered yet (:mod:`sarge.notify`).")
    records_dir = At("var/instances")

    def record_path(self, instance_id):
        return self._p("var", "instances", instance_id + ".json")

    ports_dir = At("var/ports")

    def instance_dir(self, instance_id):
        return self._p(instance_id)

    def log_path(self, instance_id, process="web"):
        """``var/log/ID.log`` for the web process, ``var/log/ID.TYPE.log`` for the others."""
        suffix = ".log" if process == "web" else f".{process}.log"
        return self._p("var", "log", instance_id + suffix)

    failed_logs_dir = At("var/log/failed",
                          "``var/log/failed``: the logs of the new instances of failed deploys.")

    def failed_log_path(self, instance_id, process="web"):
        """Where a failed deploy's new instance keeps the log of one process type:
        ``var/log/failed/ID-TYPE.log``."""
        return self._p("var", "log", "failed", f"{instance_id}-{process}.log")

    def runtime_dir(self, instance_id):
        """The instance's private runtime folder (its ``XDG_RUNTIME_DIR``), owned by the
        user its processes run as."""
        return self._p("var", "runtime", instance_id)

    def app_socket(self, instance_id):
        """The unix socket an instance's web process may listen on (``$SARGE_SOCKET``), in
        a folder only its user and nginx's workers can enter."""
        return self._p("var", "sockets", instance_id, "web.sock")

    def state_dir(self, instance_id):
        """sarge's own files about a running instance: its processes' pid files and the
        crash mark (in ``var/run``, which only supervisord's user can enter)."""
        return self._p("var", "run", instance_id)

    def instance_lock_path(self, instance_id):
        """The lock that start, stop and destroy of one instance hold."""
        return self._p("var", "run", instance_id, "instance.lock")

    def pid_path(self, instance_id, process):
        return self._p("var", "run", instance_id, f"{process}.pid")

    def crash_path(self, instance_id):
        """Where the crash watch marks an instance it stopped."""
        return self._p("var", "run", instance_id, "crashed.json")

    def data_dir(self, application_name):
        return self._p("var", "data", application_name)

    def service_data_dir(self, application_name, kind):
        """The data of one backing service of an app: ``var/data/APP/KIND`` (its user's)."""
        return self._p("var", "data", check_app_name(application_name), kind)

    services_dir = At("var/services")

    def service_record_path(self, service_id):
        """A backing service's record (:mod:`sarge.services.store`)."""
        return self._p("var", "services", service_id + ".json")

    def port_owner_path(self, owner):
        """The record that says a ``var/ports`` link is held: an instance's, or a backing
        service's (owner ``svc.APP.KIND``, or ``svc.APP.KIND/ROLE`` for a second port)."""
        if owner.startswith("svc."):
            return self.service_record_path(owner.partition("/")[0])
        return self.record_path(owner)

    def cache_dir(self, user_name):
        """The installers' cache of one app user (``var/cache/USER``, the user's, 0700)."""
        return self._p("var", "cache", user_name)

    apps_dir = At("var/apps", "``var/apps``: one deploy state per app.")

    def app_state_path(self, application_name):
        return self._p("var", "apps", check_app_name(application_name) + ".json")

    def deploy_lock_path(self, application_name):
        """The lock a deploy, route or rollback of the app holds."""
        return self._p("var", "run", f"deploy-{check_app_name(application_name)}.lock")

    frontend_lock_path = At("var/run/frontend.lock")
    envs_dir = At("var/envs")
    nginx_prefix = At("var/nginx")
    nginx_pidfile = At("var/nginx/nginx.pid")

    # -- the home itself --------------------------------------------------------------------

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
    if stat.S_IMODE(os.stat(path).st_mode) & stat.S_IWOTH:
        raise HomeError(f"{path} is writable by every user, so anyone could change what it "
                        f"runs; sarge refuses to use it. Fix it with: chmod o-w {path}")
