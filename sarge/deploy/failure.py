"""What a failed deploy leaves, and the error that says so.

A deploy that fails before its switch destroys its new instance; its logs are kept
first, as ``var/log/failed/ID-TYPE.log`` (``[deploy] keep_failed_logs``), and the
error shows the end of the log of the process type that failed (a worker's, when a
worker died), says where the logs are, and whether anything serves the app: the
version that served before, or nothing, on a first deploy.
"""

from __future__ import annotations

from ..errors import DeployError, SargeError
from ..logs import keep_failed, tail
from ..supervisord import states
from .steps import reason

#: Lines of the failing process's log shown in the error.
LOG_LINES = 10


def failing_process(home, instance) -> str:
    """The process type of ``instance`` that exited when it was meant to run (the first,
    web first), else ``web``: its log says why the deploy failed."""
    for process in sorted(instance.processes, key=lambda p: (p != "web", p)):
        try:
            info = home.supervisor.process(f"{instance.id}:{process}")
        except SargeError:
            break
        if info is not None and info["statename"] in states.FAILED:
            return process
    return "web"


def abandon(home, instance_id, exc, app, serving) -> BaseException:
    """Destroy the new instance ``instance_id`` of ``app`` after ``exc``, keeping its logs;
    return the error to raise. ``serving``: the instance that serves ``app`` (None when
    nothing does)."""
    try:
        instance = home.get(instance_id)
        process = failing_process(home, instance)
    except SargeError:  # its record cannot be read: the destroy below says so
        instance, process = None, "web"
    lines = tail(home.log_path(instance_id, process), LOG_LINES)
    try:
        kept = keep_failed(home, instance_id, sorted(instance.processes if instance else ["web"]),
                           home.settings.keep_failed_logs)
    except (OSError, SargeError):
        kept = []  # a full disk, say: the error says nothing of logs kept, and goes on
    try:
        home.lifecycle.destroy(instance or home.get(instance_id))
        removed = f"The new instance {instance_id} was removed"
    except (SargeError, OSError) as error:
        removed = (f"The new instance {instance_id} could not all be removed ({error}); "
                   f"`sarge HOME destroy {instance_id}` finishes it")
    if not isinstance(exc, Exception):
        return exc  # KeyboardInterrupt and the like: the new instance is gone, stop here
    step = exc.step if isinstance(exc, DeployError) and exc.step else "deploy"
    why = str(exc) if isinstance(exc, DeployError) and exc.step else reason(exc)
    now = (f"the current version ({serving}) keeps serving" if serving
           else f"nothing was serving {app}, and nothing does now")
    message = f"deploy failed at step '{step}': {why}. {removed}; {now}."
    if kept:
        message += f" Its log{'s are' if len(kept) > 1 else ' is'} kept: {', '.join(kept)}."
    if lines:
        message += (f"\nLast lines of its {process} log:\n"
                    + "\n".join("  " + line for line in lines))
    return DeployError(message, step=step)
