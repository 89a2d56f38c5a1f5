"""``list`` and ``status``: the instances as supervisord, the apps' state and psutil see them."""

from __future__ import annotations

from . import processes
from .apps import load_states
from .supervisord import crashmark, states


def roles(home) -> dict:
    """{instance id: "current" or "previous"}, from the apps' deploy state."""
    found = {}
    for state in load_states(home.apps_dir):
        for previous in state.previous:
            found[previous] = "previous"
        if state.current:
            found[state.current] = "current"
    return found


def state_of(home, instance_id, info) -> str:
    """supervisord's state of the instance's web process, in lower case; "fatal" too for an
    instance the crash watch stopped."""
    if info is None:
        return "unknown"
    state = info["statename"].lower()
    if state == "stopped" and crashmark.exists(home, instance_id):
        return "fatal"
    return state if state.upper() in states.NAMES else "unknown"


def listing(home):
    """(one dict per instance: id, app, port, state, created, role, revision (what its
    archive's ``sarge-manifest.json`` said, or None); whether supervisord
    answered). One call to supervisord for every process, whatever the number of instances
    (after the client's one check of the extension's version)."""
    instances = home.instances()
    infos = home.lifecycle.states()
    app_roles = roles(home)
    rows = [
        {"id": i.id, "application_name": i.application_name, "port": i.port,
         "state": state_of(home, i.id, infos.get(i.id + ":web")) if infos is not None
         else "unknown",
         "created": i.created, "role": app_roles.get(i.id), "revision": i.revision}
        for i in instances
    ]
    return rows, infos is not None


def status(home, instance_id=None, interval: float = 0.1) -> list:
    """A dict per instance (one, or all): id, app, port, state, pid, uptime, usage, and
    the user its web process runs as, and its archive's revision.

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
        state = state_of(home, instance.id, info)
        pid = info["pid"] if info and info["pid"] else None
        uptime = info["now"] - info["start"] if info and state == "running" else None
        records.append({
            "id": instance.id, "application_name": instance.application_name,
            "port": instance.port, "state": state, "pid": pid, "uptime": uptime,
            "exitstatus": info["exitstatus"] if info else None,
            "crashed": crashmark.read(home, instance.id),
            "processes": 0, "memory_rss": None, "cpu_percent": None, "cpu_seconds": None,
            "user": None, "revision": instance.revision,
        })
        roots[instance.id] = [infos[f"{instance.id}:{p}"]["pid"] for p in instance.processes
                              if infos.get(f"{instance.id}:{p}", {}).get("pid")]
    usage = processes.usage([pid for pids in roots.values() for pid in pids], interval)
    for record in records:
        trees = [usage[pid] for pid in roots[record["id"]] if pid in usage]
        if trees:
            record.update({key: round(sum(t[key] for t in trees), 2) for key in trees[0]
                           if key != "user"})
            record["user"] = trees[0]["user"]  # the web process's
    return records
