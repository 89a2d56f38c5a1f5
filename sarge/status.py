"""``status``: supervisord's view of instances joined with their process trees' usage."""

from __future__ import annotations

from . import processes


def status(home, instance_id=None, interval: float = 0.1) -> list:
    """A dict per instance (one, or all): id, app, port, state, pid, uptime and usage.

    Needs supervisord: raises :class:`~sarge.errors.SupervisordNotRunning` otherwise.
    """
    instances = [home.get(instance_id)] if instance_id is not None else home.instances()
    infos = home.supervisor.processes()
    records = []
    for instance in instances:
        info = infos.get(instance.id + ":web")
        state = info["statename"].lower() if info else "unknown"
        pid = info["pid"] if info and info["pid"] else None
        uptime = info["now"] - info["start"] if info and state == "running" else None
        records.append({
            "id": instance.id, "application_name": instance.application_name,
            "port": instance.port, "state": state, "pid": pid, "uptime": uptime,
            "exitstatus": info["exitstatus"] if info else None,
            "memory_rss": None, "cpu_percent": None, "cpu_seconds": None, "processes": 0,
        })
    usage = processes.usage([r["pid"] for r in records if r["pid"]], interval)
    for record in records:
        if record["pid"] in usage:
            record.update(usage[record["pid"]])
    return records
