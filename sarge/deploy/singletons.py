"""Singleton process types: ``[processes.TYPE] singleton = true`` in ``sarge-app.toml``
(a ``celery beat``, say), which must never run twice at once for an app.

A deploy, a rollback and a route start the new instance's other types beside the old
instance's, as today (``web`` must overlap, so must workers); its singleton types start
only after the switch, in the step ``start singletons``, once no other instance of the
app runs them: the old instance was stopped already (deploy, rollback), or those types
are stopped on it then (route, which leaves the old instance's other types running).
"""

from __future__ import annotations

from ..manifest import Manifest
from ..supervisord import states


def singletons(instance) -> list:
    """The instance's singleton types, sorted."""
    declared = Manifest.from_dict(instance.manifest)
    return sorted(p for p in instance.processes if declared.options(p).singleton)


def overlapping(instance) -> list:
    """The types that start beside the old instance (all but the singletons), web first."""
    held = set(singletons(instance))
    return sorted((p for p in instance.processes if p not in held),
                  key=lambda p: (p != "web", p))


def start_singletons(home, steps, instance) -> None:
    """The step ``start singletons``: stop the instance's singleton types on every other
    instance of its app that runs them, then start them on ``instance``. No step when it
    has none."""
    held = singletons(instance)
    if not held:
        return
    with steps.step("start singletons") as step:
        stopped = []
        for other in home.instances():
            if other.application_name != instance.application_name or other.id == instance.id:
                continue
            running = [p for p in held if _runs(home, other.id, p)]
            if running:
                home.lifecycle.stop(other.id, processes=running)
                stopped.append(f"{other.id}:{','.join(running)}")
        home.lifecycle.start(instance.id, wait=False, processes=held)
        step["detail"] = ", ".join(held) + (
            f", once {' '.join(stopped)} had stopped" if stopped else "")


def _runs(home, instance_id, process) -> bool:
    """Whether the process runs or will run again by itself: an EXITED one is about to
    be started again by supervisord (autorestart), so it must be stopped too."""
    info = home.supervisor.process(f"{instance_id}:{process}")
    return info is not None and info["statename"] in states.RUNNING | {"EXITED"}
