"""The front-end: nginx, pointed at the current instance of each app; two kinds behind
one small interface (:class:`Frontend`): lock, check_user, apply(routes), drain.

- :class:`~sarge.frontend.own.OwnNginx` (``[frontend] mode = "nginx"``, the
  default): sarge runs its own nginx as the program ``nginx`` of the home's
  supervisord, from ``etc/nginx/nginx.conf``, reloaded gracefully at each switch;
- :class:`~sarge.frontend.system.SystemNginx` (``mode = "system"``): sarge writes
  ``etc/nginx/sites.conf`` (server blocks only) for the machine's nginx to include,
  and runs the configured test and reload commands.

Either way the routes it was given are saved as data (``etc/nginx/routes.json``,
:mod:`sarge.frontend.routes`) once nginx has them, for ``repair`` to read.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

from ..files import File, locked, write_file
from ..ports import check_holder
from . import routes as saved_routes
from . import sites


class Drain:
    """What a switch left to finish: the nginx workers that were serving before it, and
    the sockets of the instances that served through a link before it
    (:class:`~sarge.frontend.sites.Links`), until their connections are done."""

    def __init__(self, workers=(), grace: float = 0.0, sockets=()):
        self.workers = list(workers)
        self.grace = grace
        self.sockets = list(sockets)


class Frontend:
    """What both front-ends share. ``layout`` gives the paths; ``supervisor`` is the
    home's supervisord client; ``settings`` its settings; ``python`` the interpreter of
    sarge's launcher; ``run`` runs a command (``subprocess.run``); ``sleep`` and
    ``clock`` wait; ``check_holder`` (:func:`sarge.ports.check_holder`) proves nginx
    holds its ports."""

    def __init__(self, layout, supervisor, settings, *, python=sys.executable,
                 run=subprocess.run, sleep=time.sleep, clock=time.monotonic,
                 check_holder=check_holder):
        self.layout = layout
        self.supervisor = supervisor
        self.settings = settings
        self.python = python
        self.run = run
        self.sleep = sleep
        self.clock = clock
        self.check_holder = check_holder

    #: nginx's log of each answer's status and upstream (:mod:`sarge.deploy.watch`), or
    #: None when this front-end keeps none (the machine's nginx logs where it will).
    watch_log = None

    def lock(self):
        """The front-end's lock: hold it from reading the apps' states to the reload, so
        that concurrent deploys never load stale routes."""
        return locked(self.layout.frontend_lock_path)

    def check_user(self):
        """(user, group) that nginx's workers run as, when sarge chooses it; else None."""
        return None

    def apply(self, routes: list) -> Drain:
        """Make nginx route as ``routes`` say (dicts: app, instance, listen, port, socket,
        site...), then save them as data; return what is left to drain. The links of the
        apps on sockets move once nginx has accepted the configuration; when that is all
        that changes, nginx is not reloaded at all."""
        sites.write_files(self.layout, routes)
        links = sites.Links(self.layout, routes)
        try:
            drain = self._apply(routes, links)
        except BaseException:
            links.restore()
            raise
        drain.sockets = links.replaced
        saved_routes.save(self.layout.routes_path, routes)
        return drain

    def _apply(self, routes: list, links) -> Drain:  # pragma: no cover - each kind's own
        raise NotImplementedError

    def settle(self, drain: Drain, timeout: float = 3.0) -> None:
        """Wait (``timeout`` at most) until the workers of before the switch no longer take
        new connections: they close their listening sockets soon after the reload, and
        until then a new request may still reach the old routes."""
        import psutil

        deadline = self.clock() + timeout
        for worker in drain.workers:
            while self.clock() < deadline:
                try:
                    listening = [c for c in worker.net_connections("inet")
                                 if c.status == psutil.CONN_LISTEN]
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    break
                except psutil.AccessDenied:  # not ours to see: the drain waits for it
                    break
                if not listening:
                    break
                self.sleep(0.01)

    def drain(self, drain: Drain) -> bool:
        """Wait until the workers of before the switch have exited; False on timeout."""
        import psutil  # lazily, as everywhere: it costs a command's start-up

        deadline = self.clock() + self.settings.drain_timeout
        if drain.grace:
            self.sleep(drain.grace)
        if drain.workers:
            gone, alive = psutil.wait_procs(drain.workers, timeout=self.settings.drain_timeout)
            if alive:
                return False
        while sites.connections(drain.sockets):
            if self.clock() > deadline:
                return False
            self.sleep(0.05)
        return True




def _restore(path: str, text) -> None:
    """Put back the file that was at ``path`` (None: there was none)."""
    if text is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        write_file(File(path, text))
