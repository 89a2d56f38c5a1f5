"""What each Fault supervisord answers becomes: one :mod:`sarge.errors` exception,
whose message names the program and what to do and whose ``code`` is the fault's (one
of ``supervisor.xmlrpc.Faults``). :class:`~sarge.supervisord.client.Supervisor` sends
every fault of every call through :func:`translate`."""

from __future__ import annotations

from ..errors import ProcessFailed, SupervisordShuttingDown, SupervisorError

#: What each fault (by its name in ``supervisor.xmlrpc.Faults``) becomes: the error's class
#: and its message, with ``{subject}`` (the program, group or file the call was about),
#: ``{method}``, ``{text}`` (supervisord's fault string) and ``{hint}``.
_FAULTS = {
    "UNKNOWN_METHOD": (SupervisorError, "supervisord has no method {method}"),
    "INCORRECT_PARAMETERS": (SupervisorError, "supervisord refused {method}'s arguments: {text}"),
    "BAD_ARGUMENTS": (SupervisorError, "supervisord refused {method}'s arguments: {text}"),
    "SIGNATURE_UNSUPPORTED": (SupervisorError, "supervisord refused {method}: {text}"),
    "SHUTDOWN_STATE": (SupervisordShuttingDown, "supervisord is shutting down (it stops its "
                       "processes, then exits); once it has exited, {hint} again"),
    "BAD_NAME": (SupervisorError, "supervisord does not know {subject}; run `sarge HOME init` "
                 "or restart supervisord"),
    "BAD_SIGNAL": (SupervisorError, "supervisord cannot send {subject} that signal: {text}"),
    "NO_FILE": (ProcessFailed, "supervisord cannot run {subject}: {text}"),
    "NOT_EXECUTABLE": (ProcessFailed, "supervisord cannot run {subject}: {text}"),
    "ABNORMAL_TERMINATION": (ProcessFailed, "{subject} exited as soon as it was started"),
    "SPAWN_ERROR": (ProcessFailed, "{subject} exited as soon as it was started"),
    "ALREADY_STARTED": (SupervisorError, "{subject} is running already"),
    "NOT_RUNNING": (SupervisorError, "{subject} is not running"),
    "ALREADY_ADDED": (SupervisorError, "supervisord has {subject} already"),
    "STILL_RUNNING": (ProcessFailed, "{subject} is still running; stop it first"),
    "CANT_REREAD": (SupervisorError, "supervisord cannot read its configuration: {text}"),
}
_OTHER_FAULT = (SupervisorError, "supervisord failed on {subject}: {text}")


def translate(code: int, text: str, subject: str, method: str = "",
              hint: str = "start it first") -> SupervisorError:
    """The exception for the fault ``code`` (``text``: its fault string) on a call of
    ``method`` about ``subject`` (a program, group or file); ``hint`` says how to start
    supervisord."""
    from supervisor.xmlrpc import getFaultDescription

    cls, message = _FAULTS.get(getFaultDescription(code), _OTHER_FAULT)
    return cls(message.format(subject=subject, method=method, text=text, hint=hint), code=code)
