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

from .. import ports
from ..files import File, locked, write_file
from ..ports import check_holder
from ..processes import alive
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
        links.prune()
        drain.sockets = links.replaced
        saved_routes.save(self.layout.routes_path, routes)
        return drain

    def _apply(self, routes: list, links) -> Drain:  # pragma: no cover - each kind's own
        raise NotImplementedError

    def settle(self, drain: Drain, timeout: float = 3.0) -> None:
        """Wait (``timeout`` at most) until the workers of before the switch no longer take
        new connections: they close their listening sockets soon after the reload, and
        until then a new request may still reach the old routes."""
        deadline = self.clock() + timeout
        for worker in drain.workers:
            # gone, or not ours to see (the drain waits for it): not listening
            while self.clock() < deadline and ports.still_listening(worker.pid):
                self.sleep(0.01)

    def drain(self, drain: Drain, pids=()) -> str:
        """Wait until what served before the switch is done: nginx's old workers exited,
        the old sockets' connections closed. Returns ``"drained"``; ``"quiet"`` when
        nothing has moved for ``[frontend] drain_quiet`` seconds: the old workers read
        and wrote nothing, no connection to an old socket ended, and the old instance's
        processes ``pids`` used no CPU and moved no data to speak of (what is left are
        idle WebSockets and long-polls, which its graceful stop closes); ``"timed out"``
        after ``drain_timeout``."""
        settings = self.settings
        deadline = self.clock() + settings.drain_timeout
        if drain.grace:
            self.sleep(drain.grace)
        instance = [p for p in map(_process, pids) if p is not None]
        base, since = None, self.clock()
        while True:
            workers = [w for w in drain.workers if alive(w)]
            connections = sites.connected(drain.sockets)
            if not workers and not connections:
                return "drained"
            now = self.clock()
            if now > deadline:
                return "timed out"
            seen = (_io(workers), connections, *_usage(instance))
            if base is None or _moved(base, seen):
                base, since = seen, now
            elif settings.drain_quiet and now - since >= settings.drain_quiet:
                return "quiet"
            self.sleep(0.05)


#: What the old instance may do in a quiet window and still be idle: its server's own
#: housekeeping (uvicorn's supervisor pings its workers twice a second; WebSocket pings).
IDLE_CPU, IDLE_BYTES = 0.05, 4096


def _moved(base, seen) -> bool:
    return (seen[:2] != base[:2] or seen[2] - base[2] >= IDLE_CPU
            or seen[3] - base[3] >= IDLE_BYTES)


def _process(pid):
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _usage(processes) -> tuple:
    """(CPU seconds, characters read and written) of ``processes`` so far, the ones gone
    or not ours to see left out."""
    import psutil

    cpu = moved = 0.0
    for process in processes:
        try:
            times, io = process.cpu_times(), process.io_counters()
        except (psutil.Error, AttributeError):
            continue
        cpu += times.user + times.system
        moved += io.read_chars + io.write_chars
    return cpu, moved


def _io(processes) -> tuple:
    """What ``processes`` have read and written so far (characters, through any file or
    socket), the ones gone or not ours to see left out."""
    import psutil

    total = []
    for process in processes:
        try:
            counters = process.io_counters()
            total.append((process.pid, counters.read_chars, counters.write_chars))
        except (psutil.Error, AttributeError):
            continue
    return tuple(total)


def _restore(path: str, text) -> None:
    """Put back the file that was at ``path`` (None: there was none)."""
    if text is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        write_file(File(path, text))
