"""What each Fault supervisord answers becomes: one :mod:`sarge.errors` exception,
whose message names the program and what to do and whose ``code`` is the fault's (one
of :class:`Faults`). :class:`~sarge.supervisord.client.Supervisor` sends every fault of
every call through :func:`translate`."""

from __future__ import annotations

from ..errors import ProcessFailed, SupervisordShuttingDown, SupervisorError


class Faults:
    """supervisord's fault codes, as ``supervisor.xmlrpc.Faults`` has them: they are part of
    its XML-RPC protocol. A copy, so that the client does not import supervisor's server
    side (:mod:`sarge.supervisord.transport`); a test holds it to supervisor's own."""

    UNKNOWN_METHOD = 1
    INCORRECT_PARAMETERS = 2
    BAD_ARGUMENTS = 3
    SIGNATURE_UNSUPPORTED = 4
    SHUTDOWN_STATE = 6
    BAD_NAME = 10
    BAD_SIGNAL = 11
    NO_FILE = 20
    NOT_EXECUTABLE = 21
    FAILED = 30
    ABNORMAL_TERMINATION = 40
    SPAWN_ERROR = 50
    ALREADY_STARTED = 60
    NOT_RUNNING = 70
    SUCCESS = 80
    ALREADY_ADDED = 90
    STILL_RUNNING = 91
    CANT_REREAD = 92


#: Each fault's name, by its code.
NAMES = {code: name for name, code in vars(Faults).items() if name.isupper()}

#: What each fault (by its name in :class:`Faults`) becomes: the error's class
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
    cls, message = _FAULTS.get(NAMES.get(code, ""), _OTHER_FAULT)
    return cls(message.format(subject=subject, method=method, text=text, hint=hint), code=code)
