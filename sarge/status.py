"""``status``: supervisord's view of instances joined with their process trees' usage."""

from __future__ import annotations

from . import processes


def status(home, instance_id=None, interval: float = 0.1) -> list:
    """A dict per instance (one, or all): id, app, port, state, pid, uptime and usage.

    ``state``, ``pid`` and ``uptime`` are those of the ``web`` process; memory and
    CPU add up every process tree of the instance (web, workers, their children).
    Needs supervisord: raises :class:`~sarge.errors.SupervisordNotRunning` otherwise.
    """
    instances = [home.get(instance_id)] if instance_id is not None else home.instances()
    infos = home.supervisor.processes()
    records = []
    roots = {}
    for instance in instances:
        info = infos.get(instance.id + ":web")
        state = info["statename"].lower() if info else "unknown"
        pid = info["pid"] if info and info["pid"] else None
        uptime = info["now"] - info["start"] if info and state == "running" else None
        records.append({
            "id": instance.id, "application_name": instance.application_name,
            "port": instance.port, "state": state, "pid": pid, "uptime": uptime,
            "exitstatus": info["exitstatus"] if info else None,
            "processes": 0, "memory_rss": None, "cpu_percent": None, "cpu_seconds": None,
        })
        roots[instance.id] = [infos[f"{instance.id}:{p}"]["pid"] for p in instance.processes
                              if infos.get(f"{instance.id}:{p}", {}).get("pid")]
    usage = processes.usage([pid for pids in roots.values() for pid in pids], interval)
    for record in records:
        trees = [usage[pid] for pid in roots[record["id"]] if pid in usage]
        if trees:
            record.update({key: round(sum(t[key] for t in trees), 2) for key in trees[0]})
    return records
