"""The crash watch: the home's supervisord event listener that ends crash loops.

supervisord gives up only on a process that dies before ``startsecs``; one
that crashes after a few seconds is restarted forever. The crash watch,
``[eventlistener:sarge-crashwatch]`` in ``etc/supervisord.conf``, hears every
``PROCESS_STATE_EXITED`` event. When an instance's processes exit unexpectedly
more than ``[processes] crash_limit`` times within ``crash_window`` seconds, it
stops the instance (keeping it stopped at boot), marks it crashed
(``var/run/ID/crashed.json``: why, the last exit status, the last log lines),
so that ``list`` and ``status`` show it ``fatal``, and says why in
``var/log/sarge.log``. ``sarge HOME start ID`` clears the mark.

Its stdout is supervisord's event protocol: nothing else may be written there.
"""

from __future__ import annotations

import collections
import sys
import time


class CrashWatch:
    """Counts unexpected exits per instance and stops those past the limit."""

    def __init__(self, home, limit: int, window: float, clock=time.monotonic):
        self.home = home
        self.limit = limit
        self.window = window
        self.clock = clock
        self.exits = collections.defaultdict(collections.deque)

    def exited(self, headers: dict) -> bool:
        """Handle one PROCESS_STATE_EXITED payload's headers; True if it stopped an instance."""
        from ..instance import INSTANCE_ID_RE

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
        self.stop(group, headers.get("processname", "web"), len(exits))
        return True

    def stop(self, instance_id: str, process: str, count: int) -> None:
        from ..errors import SargeError
        from . import crashmark

        reason = (f"{process} exited {count} times in {self.window:g}s (more than "
                  f"[processes] crash_limit = {self.limit}); stopped")
        try:
            crashmark.write(self.home, instance_id, process, reason, self.last_status(process))
            self.home.stop(instance_id)
        except SargeError as exc:
            sys.stderr.write(f"sarge-crashwatch: cannot stop {instance_id}: {exc}\n")
            return
        self.home.log_action("crash-loop", f"{instance_id}: {reason}")


    def last_status(self, process: str):
        """The exit status supervisord last logged for a process of that name.

        supervisord restarts the process before its event reaches the watch, and
        a new start clears the status it reports; its log line keeps it. The
        line names the process type only, so with two instances crashing in the
        same instant the status may be the other's.
        """
        import os
        import re

        from ..logs import tail

        pattern = re.compile(r"exited: %s \(exit status (\d+);" % re.escape(process))
        for line in reversed(tail(os.path.join(self.home.log_dir, "supervisord.log"), 50)):
            found = pattern.search(line)
            if found:
                return int(found.group(1))
        return None


def _headers(line: str) -> dict:
    return dict(pair.split(":", 1) for pair in line.split())


def main(argv=None, stdin=None, stdout=None) -> int:
    """``python -I -m sarge.supervisord.crashwatch HOME``: the event listener."""
    from ..home import Home

    args = sys.argv[1:] if argv is None else argv
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    home = Home(args[0])
    watch = CrashWatch(home, home.settings.crash_limit, home.settings.crash_window)
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return 0
        headers = _headers(line)
        payload = stdin.read(int(headers["len"]))
        if headers.get("eventname") == "PROCESS_STATE_EXITED":
            first, _, _ = payload.partition("\n")
            try:
                watch.exited(_headers(first))
            except Exception as exc:  # never let one event kill the watch
                sys.stderr.write(f"sarge-crashwatch: {type(exc).__name__}: {exc}\n")
        stdout.write("RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
