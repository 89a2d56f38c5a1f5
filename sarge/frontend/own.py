"""sarge's own nginx: a program of the home's supervisord, reloaded gracefully.

In the default mode sarge runs its own nginx as the program ``nginx`` of the
home's supervisord, from ``etc/nginx/nginx.conf``, with its pid, temporary
files and logs under ``var/``. Every change is rendered to a new file, checked
with ``nginx -t``, and only then put in place and loaded by a graceful reload
(SIGHUP): nginx starts new workers with the new configuration and lets the old
ones finish the requests they hold. A configuration nginx refuses is never
loaded; a reload nginx could not apply (it keeps the old configuration then)
is detected, because no new workers appear, and the old file is put back.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import socket

from .. import render
from ..commands import module_argv
from ..errors import FrontendError, PortTaken, SupervisorError
from ..files import File, read_text, write_file
from ..logs import tail
from ..processes import tree_pids
from ..supervisord import states
from ..users import FRONTEND, others, resolve
from . import sites
from .base import Drain, Frontend, _restore

INSTALL_HINT = ("install it with `apt-get install nginx-light` (or nginx), or set "
                "[frontend] nginx in etc/sarge.toml to its path")


class OwnNginx(Frontend):
    """The home's own nginx (see the module's docstring)."""

    @property
    def watch_log(self):
        return self.layout.watch_log

    _nginx = None
    _has_e = None

    def nginx(self) -> str:
        """The nginx executable, or :class:`FrontendError` saying how to install it."""
        if self._nginx is None:
            name = self.settings.nginx
            found = shutil.which(name)
            if found is None and os.sep not in name:
                for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"):
                    candidate = os.path.join(folder, name)
                    if os.access(candidate, os.X_OK):
                        found = candidate
                        break
            if found is None:
                raise FrontendError(f"nginx is not installed ({name} not found); {INSTALL_HINT}")
            self._nginx = found
        return self._nginx

    def _argv(self, conf: str) -> list:
        """nginx's command line for ``conf``, its prefix and (where supported) error log."""
        argv = [self.nginx(), "-c", conf, "-p", self.layout.nginx_prefix + "/"]
        if self._has_e is None:
            result = self.run([self.nginx(), "-h"], capture_output=True, text=True)
            self._has_e = "-e filename" in (result.stdout + result.stderr)
        if self._has_e:
            argv += ["-e", os.path.join(self.layout.log_dir, "nginx-error.log")]
        return argv

    def _test(self, conf: str) -> None:
        result = self.run(self._argv(conf) + ["-t", "-q"], capture_output=True, text=True)
        if result.returncode != 0:
            lines = [line for line in (result.stderr + result.stdout).splitlines() if line]
            problem = lines[-1] if lines else f"exit status {result.returncode}"
            for line in lines:
                if "[emerg]" in line:
                    problem = line
                    break
            raise FrontendError(f"nginx refused the new configuration, which was not loaded: "
                                f"{problem}")

    def check_user(self):
        """(user, group) for nginx's ``user`` directive when it starts as root (None
        otherwise): ``[users] frontend``, else ``nobody`` (nginx's own default);
        :class:`~sarge.errors.SettingsError` when it cannot be (:func:`sarge.users.resolve`),
        or is not apart from every app's user: an app that could signal nginx's workers
        could stop the front-end of every home, and read the other apps' traffic."""
        named = self.settings.frontend_user or ("nobody" if os.geteuid() == 0 else "")
        run_as = resolve(named, FRONTEND, self.layout.path, self.layout.settings_path,
                         apart_from=others(self.settings, FRONTEND))
        if run_as is None:
            return None
        try:
            group = grp.getgrgid(run_as.gid).gr_name
        except KeyError:
            group = str(run_as.gid)
        return (run_as.name, group)

    def _apply(self, routes, links) -> Drain:
        layout = self.layout
        for sub in ("", "/client_body", "/proxy", "/fastcgi", "/uwsgi", "/scgi"):
            os.makedirs(layout.nginx_prefix + sub, exist_ok=True)
        os.makedirs(os.path.dirname(layout.nginx_conf), exist_ok=True)
        new = render.nginx_conf(
            layout.nginx_conf, home=layout.path, prefix=layout.nginx_prefix,
            log_dir=layout.log_dir, user=self.check_user(),
            drain_timeout=self.settings.drain_timeout, sites=sites.context(layout, routes))
        old_text = read_text(layout.nginx_conf)
        if old_text == new.text and self._running():
            links.swap()  # the links alone moved: nothing for nginx to load
            return Drain()
        candidate = File(layout.nginx_conf + ".new", new.text)
        write_file(candidate)
        try:
            self._test(candidate.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(candidate.path)
        links.swap()
        write_file(new)
        self._signalled = False
        try:
            return self._load(routes)
        except BaseException:
            _restore(layout.nginx_conf, old_text)
            if self._signalled and old_text is not None:
                # nginx may have taken the new file after all: have it read the old one again
                with contextlib.suppress(Exception):
                    self.supervisor.signal("nginx", "HUP")
            raise

    def _running(self) -> bool:
        """Whether nginx runs (with the file on disk: it was loaded when it was written):
        started, and its pid in its pid file (see :meth:`_settled`)."""
        info = self.supervisor.process("nginx")
        return info is not None and info["statename"] in ("STARTING", "RUNNING") and \
            read_text(self.layout.nginx_pidfile) == f"{info['pid']}\n"

    def _load(self, routes) -> Drain:
        """Start nginx, or reload it gracefully; return the workers that must drain."""
        info = self.supervisor.process("nginx")
        if info is None:
            command = module_argv(self.python, "sarge.supervisord.launch", "--nginx",
                                  self.layout.nginx_pidfile,
                                  *self._argv(self.layout.nginx_conf))
            write_file(render.nginx_program(
                self.layout.nginx_program, command=command,
                log_file=os.path.join(self.layout.log_dir, "nginx.log"),
                drain_timeout=self.settings.drain_timeout))
            self.supervisor.add("nginx", self.layout.nginx_program)  # autostart: it starts
            self._wait_listening(routes)  # with the file just written: no reload needed
            return Drain()
        info = self._settled(info)
        if info["statename"] != "RUNNING":
            try:
                self.supervisor.start_group("nginx", wait=False)
            except SupervisorError as exc:
                raise FrontendError(f"nginx did not start: {self._error_tail()} ({exc})") from exc
            self._wait_listening(routes)
            return Drain()
        # Running, maybe since before the new file was written: reload it.
        master = info["pid"]
        old = self._workers(master)
        self.supervisor.signal("nginx", "HUP")
        self._signalled = True
        deadline = self.clock() + 10
        while True:
            workers = self._workers(master)
            if any(w.pid not in {o.pid for o in old} for w in workers):
                return Drain(old)
            if self.clock() > deadline:
                raise FrontendError("nginx did not apply the new configuration: "
                                    f"{self._error_tail()}")
            self.sleep(0.02)

    def _wait_listening(self, routes, timeout: float = 15.0) -> None:
        """Wait until nginx accepts connections on every route's address, or has failed;
        then prove that nginx holds each (a local user may have bound one first while
        nginx was down: only ports below 1024 are root's alone)."""
        deadline = self.clock() + timeout
        for route in routes:
            host, _, port = route["listen"].rpartition(":")
            host = host.strip("[]")
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}.get(host, host)
            while True:
                info = self.supervisor.process("nginx")
                taken = None
                try:
                    socket.create_connection((host, int(port)), timeout=1).close()
                    self.check_holder(int(port), tree_pids([info and info["pid"]]),
                                      "nginx", host)
                    break
                except PortTaken as exc:
                    if not _maybe_old_master(exc):
                        raise  # nginx cannot have it: no use waiting for its retries
                    taken = exc
                except OSError:
                    pass
                if info is None or info["statename"] in states.FAILED:
                    raise taken or FrontendError(f"nginx did not start: {self._error_tail()}")
                if self.clock() > deadline:
                    raise taken or FrontendError(f"nginx does not answer on {route['listen']}"
                                                 f": {self._error_tail()}")
                self.sleep(0.02)

    def _settled(self, info, timeout: float = 15.0) -> dict:
        """nginx's info once it can take a reload: a signal sent while it starts could find
        it without its handlers, or find the launcher still ending a master that outlived
        supervisord (supervisord calls it RUNNING after startsecs all the same). nginx
        writes its pid file after it installs its handlers, so the process is ready once
        its pid is in the file, whatever supervisord's state."""
        deadline = self.clock() + timeout
        pidfile = self.layout.nginx_pidfile
        while info["statename"] in states.RUNNING:
            if info["statename"] != "BACKOFF" and read_text(pidfile) == f"{info['pid']}\n":
                return dict(info, statename="RUNNING")
            if self.clock() > deadline:
                break
            self.sleep(0.02)
            info = self.supervisor.process("nginx")
        return info

    def _workers(self, master: int) -> list:
        import psutil

        try:
            return psutil.Process(master).children()
        except psutil.NoSuchProcess:
            return []

    def _error_tail(self) -> str:
        lines = tail(os.path.join(self.layout.log_dir, "nginx-error.log"), 5)
        for line in reversed(lines):
            if "[emerg]" in line or "[alert]" in line:
                return line
        return lines[-1] if lines else "see var/log/nginx-error.log"


def _maybe_old_master(taken: PortTaken) -> bool:
    """Whether what holds the port may be an nginx master that outlived supervisord (of
    this user, named nginx), which the launcher ends before nginx starts again."""
    return taken.uid in (None, os.geteuid()) and \
        (taken.program is None or taken.program.startswith("nginx"))
