"""What an instance's processes use, read with psutil.

A process tree counts as one: a gunicorn master and its workers, or a shell
script and the server it started, add up to one instance's memory and CPU.
"""

from __future__ import annotations

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
