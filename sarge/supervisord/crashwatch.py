"""The crash watch: the home's supervisord event listener that ends crash loops.

supervisord gives up only on a process that dies before ``startsecs``; one
that crashes after a few seconds is restarted forever. The crash watch,
``[eventlistener:sarge-crashwatch]`` in ``etc/supervisord.conf``, runs
``python -I -m sarge.supervisord.crashwatch HOME`` and hears every
``PROCESS_STATE_EXITED`` event. When an instance's processes exit unexpectedly
more than ``[processes] crash_limit`` times within ``crash_window`` seconds, it
stops the instance (keeping it stopped at boot), marks it crashed
(:mod:`~sarge.supervisord.crashmark`: why, the last exit status, the last log lines),
so that ``list`` and ``status`` show it ``fatal``, and says why in
``var/log/sarge.log``. ``sarge HOME start ID`` clears the mark.

It speaks supervisord's event listener protocol with :mod:`supervisor.childutils`,
and talks to supervisord on the ``SUPERVISOR_SERVER_URL`` supervisord gives it (the
home's socket when run by hand). Its stdout is that protocol: nothing else may be
written there; what goes wrong goes to stderr (``var/log/crashwatch.log``).
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time

from ..errors import SargeError
from ..home import Home
from ..instance import INSTANCE_ID_RE
from ..layout import Layout
from ..logs import tail
from . import crashmark
from .client import Supervisor


class CrashWatch:
    """Counts the unexpected exits of each instance, and stops one that exits more than
    ``limit`` times within ``window`` seconds.

    What it does about it is given: ``stop(instance_id)`` stops the instance,
    ``mark(instance_id, process, reason)`` records why (the crash mark), and
    ``log(action, detail)`` tells the home's action log; ``clock()`` is the time in
    seconds. Groups not named like an instance (nginx, the watch itself) never count.
    """

    def __init__(self, limit: int, window: float, *, stop, mark, log, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.stop = stop
        self.mark = mark
        self.log = log
        self.clock = clock
        self.exits = collections.defaultdict(collections.deque)

    def exited(self, headers: dict) -> bool:
        """Handle one PROCESS_STATE_EXITED payload's headers; True if it stopped an instance.

        An instance stopped starts counting afresh."""
        group = headers.get("groupname", "")
        if headers.get("expected") == "1" or not INSTANCE_ID_RE.fullmatch(group):
            return False
        now = self.clock()
        exits = self.exits[group]
        exits.append(now)
        while exits and exits[0] < now - self.window:
            exits.popleft()
        if len(exits) <= self.limit:
            return False
        del self.exits[group]
        self._stop(group, headers.get("processname", "web"), len(exits))
        return True

    def _stop(self, instance_id: str, process: str, count: int) -> None:
        reason = (f"{process} exited {count} times in {self.window:g}s (more than "
                  f"[processes] crash_limit = {self.limit}); stopped")
        try:
            self.mark(instance_id, process, reason)
            self.stop(instance_id)
        except SargeError as exc:
            sys.stderr.write(f"sarge-crashwatch: cannot stop {instance_id}: {exc}\n")
            return
        self.log("crash-loop", f"{instance_id}: {reason}")


def last_status(log_dir: str, process: str, instance_id: str = ""):
    """The exit status supervisord last logged (in ``log_dir/supervisord.log``) for the
    process ``instance_id:process``, or None.

    supervisord restarts the process before its event reaches the watch, and
    a new start clears the status it reports; its log line keeps it. The line
    sarge's extension writes names the instance (:func:`sarge.supervisord.rpc.log_state`);
    supervisord's own names the process type only, and is read when there is no
    other (a supervisord started before the extension wrote them): with two
    instances crashing in the same instant, that status may be the other's.
    """
    lines = tail(os.path.join(log_dir, "supervisord.log"), 100)
    if instance_id and any(_STATE_LINE.search(line) for line in lines):
        pattern = re.compile(r"%s: EXITED \(was \w+, pid \d+, exit status (\d+),"
                             % re.escape(f"{instance_id}:{process}"))
    else:
        pattern = re.compile(r"exited: %s \(exit status (\d+);" % re.escape(process))
    for line in reversed(lines):
        found = pattern.search(line)
        if found:
            return int(found.group(1))
    return None


#: A line of :func:`sarge.supervisord.rpc.log_state`'s.
_STATE_LINE = re.compile(r" \S+: [A-Z]+ \(was [A-Z]+[,)]")


def supervisor_for(socket_path: str, environ=os.environ):
    """The supervisord client of the watch: on ``SUPERVISOR_SERVER_URL`` when supervisord
    gave it (``childutils.getRPCInterface``), else on the home's ``socket_path``."""
    from supervisor import childutils

    if not environ.get("SUPERVISOR_SERVER_URL"):
        return Supervisor(socket_path)
    return Supervisor(socket_path, connect=lambda: childutils.getRPCInterface(environ))


def watch_of(home) -> CrashWatch:
    """The crash watch of ``home``: its settings, its ``stop``, crash mark and action log."""
    def mark(instance_id, process, reason):
        crashmark.write(home, instance_id, process, reason,
                        last_status(home.log_dir, process, instance_id))

    settings = home.settings
    return CrashWatch(settings.crash_limit, settings.crash_window, stop=home.lifecycle.stop,
                      mark=mark, log=home.log_action)


def main(argv=None, stdin=None, stdout=None) -> int:
    """``python -I -m sarge.supervisord.crashwatch HOME``: the event listener."""
    from supervisor import childutils

    args = sys.argv[1:] if argv is None else argv
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    home = Home(args[0], supervisor=supervisor_for(Layout(args[0]).socket_path))
    watch = watch_of(home)
    while True:
        # childutils.listener.wait() would do the next three lines, but takes the end of
        # stdin (supervisord gone) for a header line without "len" and raises.
        childutils.listener.ready(stdout)
        line = stdin.readline()
        if not line:
            return 0
        headers = childutils.get_headers(line)
        payload = stdin.read(int(headers["len"]))
        if headers.get("eventname") == "PROCESS_STATE_EXITED":
            try:
                watch.exited(childutils.get_headers(payload.partition("\n")[0]))
            except Exception as exc:  # never let one event kill the watch
                sys.stderr.write(f"sarge-crashwatch: {type(exc).__name__}: {exc}\n")
        childutils.listener.ok(stdout)


if __name__ == "__main__":
    sys.exit(main())
