"""How a process last exited: its real exit status, never supervisord's made-up 0.

supervisord forgets the exit status of a process that exits before ``startsecs``: it
sets it to None on the way to BACKOFF, and ``getProcessInfo`` reports ``exitstatus``
0 then, and on to FATAL, whatever the process returned. :func:`how_exited` asks
sarge's extension first (``sarge.getLastExit``: each process keeps what it was told
when supervisord reaped it, :mod:`sarge.supervisord.rpc`). A supervisord started
before that method existed cannot say; supervisord's log keeps the truth too, in
lines of this form (``var/log/supervisord.log``)::

    INFO spawned: 'web' with pid 4242
    WARN exited: web (exit status 3; not expected)
    WARN exited: web (terminated by SIGKILL; not expected)

With sarge's extension loaded, its own lines name the instance as well
(``web-jCCbfV:web: EXITED (was RUNNING, pid 4242, exit status 3, not expected)``),
and those are read first. supervisord's lines name the process type only; the pid of
the spawn line is what ties them to one process: the launcher writes it to ``var/run/ID/TYPE.pid``
before it execs the app, and the crash watch's events carry it. The first ``exited``
line of that type after the process's ``spawned`` line is its own, unless another
instance's process of the same type exited in between (within the same moment).
Without a pid, or when its spawn line has rotated away, the last ``exited`` line of
that type is taken.
"""

from __future__ import annotations

import os
import re

from ..logs import tail

#: How many of the log's last lines are read.
LINES = 400


def last_exit(log_dir: str, process: str, pid=None, instance_id: str = ""):
    """How the process of type ``process`` whose pid was ``pid`` exited, as supervisord
    logged it ("exit status 3", "terminated by SIGKILL"), or None when the log does not
    say (it has not exited, or the log has rotated). The lines sarge's extension writes
    name the instance (:func:`sarge.supervisord.rpc.log_state`): when the log has them,
    ``instance_id``'s last exit is read there, whatever another instance did since."""
    lines = tail(os.path.join(log_dir, "supervisord.log"), LINES)
    if instance_id and any(_STATE_LINE.search(line) for line in lines):
        mine = re.compile(r"\b%s: EXITED \(was \w+, pid \d+, (exit status -?\d+)"
                          % re.escape(f"{instance_id}:{process}"))
        for line in reversed(lines):
            found = mine.search(line)
            if found:
                return found.group(1)
        return None
    exited = re.compile(r"\bexited: %s \((.+?)(?:; (?:not )?expected)?\)$" % re.escape(process))
    spawned = f"spawned: '{process}' with pid {pid}"
    start = None
    if pid:
        start = next((i for i in range(len(lines) - 1, -1, -1)
                      if lines[i].endswith(spawned)), None)
    if start is not None:
        for line in lines[start + 1:]:
            found = exited.search(line)
            if found:
                return found.group(1)
        return None
    for line in reversed(lines):
        found = exited.search(line)
        if found:
            return found.group(1)
    return None


#: A line of :func:`sarge.supervisord.rpc.log_state`'s (``web-jCCbfV:web: EXITED (was
#: RUNNING, pid 12, exit status 3, not expected)``).
_STATE_LINE = re.compile(r" \S+:\S+: [A-Z]+ \(was [A-Z]+[,)]")


def status_of(how):
    """The exit status in ``how`` (:func:`last_exit`'s text) as a number, or None (a
    signal, or nothing known)."""
    found = re.fullmatch(r"exit status (-?\d+)", how or "")
    return int(found.group(1)) if found else None


def read_pid(path: str):
    """The pid in the launcher's pid file at ``path``, or None."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def how_exited(layout, supervisor, instance_id: str, process: str, pid=None,
               info=None) -> str:
    """How the process ``process`` of ``instance_id`` last exited, for a message: as
    sarge's extension in ``supervisor`` remembers it, else from supervisord's log
    (``pid``: the process's; default: the one its launcher wrote), else from ``info``
    (supervisord's process info) when that can be trusted: EXITED, after
    ``startsecs``. "exit status unknown" otherwise, never a made-up 0."""
    how = supervisor.last_exit(f"{instance_id}:{process}")
    if how:
        return how
    pid = pid or read_pid(layout.pid_path(instance_id, process))
    how = last_exit(layout.log_dir, process, pid, instance_id)
    if how:
        return how
    if info and info.get("statename") == "EXITED" and info.get("exitstatus", -1) >= 0:
        return f"exit status {info['exitstatus']}"
    return "exit status unknown"
