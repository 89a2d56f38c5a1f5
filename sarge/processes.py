"""What an instance's processes use, read with psutil; and the end of what a process
left in its process group (:func:`reap`).

A process tree counts as one: a gunicorn master and its workers, or a shell
script and the server it started, add up to one instance's memory and CPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time


def _tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def tree_pids(pids) -> set:
    """The pids of the process trees of ``pids`` (each one and its descendants)."""
    return {proc.pid for pid in pids if pid for proc in _tree(pid)}


def alive(process) -> bool:
    """Whether the psutil ``process`` still runs: not exited (its pid not taken by
    another since), and not a zombie, exited and not yet reaped by its parent. One not
    ours to look at runs, as far as we can tell."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.AccessDenied:
        return True
    except psutil.Error:
        return False


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that runs (:func:`alive`)."""
    import psutil

    try:
        return alive(psutil.Process(pid))
    except psutil.Error:
        return False


def usage(pids, interval: float = 0.1, sleep=time.sleep) -> dict:
    """Memory and CPU of each pid's process tree: ``{pid: {...}}``.

    Every tree is sampled over the same ``interval`` (one sleep for all), so
    the cost does not grow with the number of instances.  Each value holds
    ``processes`` (count), ``memory_rss`` (bytes), ``cpu_percent`` (over the
    interval; 100 is one core), ``cpu_seconds`` (user+system since start) and
    ``user`` (who the tree's first process runs as).
    """
    import psutil

    trees = {pid: _tree(pid) for pid in pids if pid}
    for procs in trees.values():
        for proc in procs:
            try:
                proc.cpu_percent(None)
            except psutil.Error:
                pass
    if trees:
        sleep(interval)
    result = {}
    for pid, procs in trees.items():
        totals = {"processes": 0, "memory_rss": 0, "cpu_percent": 0.0, "cpu_seconds": 0.0,
                  "user": None}
        try:
            totals["user"] = procs[0].username() if procs else None
        except (psutil.Error, KeyError):  # gone, or a uid without a name
            pass
        for proc in procs:
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                    percent = proc.cpu_percent(None)
            except psutil.Error:
                continue  # exited while we looked
            totals["processes"] += 1
            totals["memory_rss"] += rss
            totals["cpu_percent"] += percent
            totals["cpu_seconds"] += times.user + times.system
        totals["cpu_percent"] = round(totals["cpu_percent"], 1)
        totals["cpu_seconds"] = round(totals["cpu_seconds"], 2)
        result[pid] = totals
    return result


def reap(pidfile: str, belongs, sig=signal.SIGTERM, timeout: float = 10.0) -> None:
    """End what is left of the process group named in ``pidfile``: each member that
    ``belongs`` (a test on a psutil.Process: guards against a reused pid, and against a
    process of another program that joined the group), signalled one by one."""
    try:
        with open(pidfile) as f:
            group = int(f.read().strip())
    except (OSError, ValueError):
        return
    if group <= 1 or group in (os.getpid(), os.getpgid(0)):
        return
    import psutil

    def members():
        found = []
        for pid in psutil.pids():  # getpgid first: a syscall, where a Process reads /proc
            try:
                if os.getpgid(pid) == group:
                    proc = psutil.Process(pid)
                    if belongs(proc):
                        found.append(proc)
            except (OSError, psutil.Error):
                continue
        return found

    # Listed again after each round: a member may fork (a master restarting a worker).
    deadline = time.monotonic() + timeout
    signalled = set()
    while True:
        alive = members()
        if not alive:
            return
        late = time.monotonic() > deadline
        for proc in alive:
            if late or proc.pid not in signalled:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGKILL if late else sig)
                signalled.add(proc.pid)
        psutil.wait_procs(alive, timeout=0.2)
        if late and time.monotonic() > deadline + 5:
            return  # unkillable (a process stuck in the kernel): nothing more to do


def instance_member(instance_id):
    """A test for :func:`reap`: the process is one of the instance's (its id in its
    environment)."""
    def belongs(proc) -> bool:
        return proc.environ().get("SARGE_INSTANCE") == instance_id
    return belongs
