"""A client for the home's supervisord, over XML-RPC on its unix socket.

It speaks the protocol ``supervisorctl`` speaks, with supervisor's own
transport, so whatever sarge does, ``bin/supervisorctl status`` shows.  The
client knows a socket path and program names, nothing of homes or instances.
supervisord's faults and socket errors become :mod:`sarge.errors` exceptions.
"""

from __future__ import annotations

import errno

from ..errors import ProcessFailed, SupervisordNotRunning, SupervisorError

# supervisor.xmlrpc.Faults, repeated here so that importing this module stays cheap.
UNKNOWN_METHOD = 1
BAD_NAME = 10
NO_FILE = 20
NOT_EXECUTABLE = 21
ABNORMAL_TERMINATION = 40
SPAWN_ERROR = 50
ALREADY_STARTED = 60
NOT_RUNNING = 70
SUCCESS = 80
ALREADY_ADDED = 90
STILL_RUNNING = 91
CANT_REREAD = 92

_NOT_RUNNING_ERRNOS = {errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK}


class Supervisor:
    """supervisord behind the unix socket at ``socket_path``.

    ``hint`` ends the message given when supervisord does not answer (the
    home passes "start it with HOME/bin/supervisord").
    """

    def __init__(self, socket_path: str, hint: str = "start it first"):
        self.socket_path = socket_path
        self.hint = hint
        self._proxy = None

    def _rpc(self):
        if self._proxy is None:
            import xmlrpc.client

            from supervisor.xmlrpc import SupervisorTransport

            transport = SupervisorTransport(None, None, "unix://" + self.socket_path)
            self._proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        return self._proxy

    def _call(self, method: str, *args):
        import xmlrpc.client

        for attempt in (1, 2):
            try:
                name = method if "." in method else "supervisor." + method
                return getattr(self._rpc(), name)(*args)
            except xmlrpc.client.Fault:
                raise
            except OSError as exc:
                self._proxy = None  # the transport keeps its connection: start afresh
                if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)) or (
                    exc.errno in _NOT_RUNNING_ERRNOS
                ):
                    raise SupervisordNotRunning(
                        f"supervisord is not running (nothing answers on {self.socket_path}); "
                        f"{self.hint}"
                    ) from exc
                if attempt == 2:
                    raise SupervisorError(
                        f"cannot talk to supervisord on {self.socket_path}: {exc}"
                    ) from exc
                # a connection kept from a supervisord that has since restarted: retry once
            except xmlrpc.client.ProtocolError as exc:
                raise SupervisorError(
                    f"supervisord refused the request {method}: {exc.errmsg}"
                ) from exc

    def is_running(self) -> bool:
        """True when supervisord answers on the socket."""
        try:
            self._call("getState")
        except SupervisordNotRunning:
            return False
        return True

    def processes(self) -> dict:
        """Every process's info dict (``getAllProcessInfo``), by ``group:name``, in one call."""
        return {_namespec(i): i for i in self._call("getAllProcessInfo")}

    def process(self, name: str):
        """The info dict of one process, or None when supervisord does not know it."""
        import xmlrpc.client

        try:
            return self._call("getProcessInfo", name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == BAD_NAME:
                return None
            raise _error(fault, name) from fault

    def add(self, name: str, path: str) -> None:
        """Make the program ``name``, defined in the file at ``path``, known to supervisord.

        Uses sarge's ``addProgramFile`` (reads that file alone); a supervisord
        without it re-reads its whole configuration instead.
        """
        import xmlrpc.client

        try:
            try:
                self._call("sarge.addProgramFile", path)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode != UNKNOWN_METHOD:
                    raise
                self._call("reloadConfig")
                self._call("addProcessGroup", name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != ALREADY_ADDED:
                raise _error(fault, name) from fault

    def set_autostart(self, group: str, autostart: bool) -> None:
        """Tell supervisord the group's new autostart (written to its file), so that its
        configuration matches the file; a supervisord without sarge's extension is left be."""
        import xmlrpc.client

        try:
            self._call("sarge.setAutostart", group, bool(autostart))
        except xmlrpc.client.Fault as fault:
            if fault.faultCode not in (UNKNOWN_METHOD, BAD_NAME):
                raise _error(fault, group) from fault

    def remove(self, name: str) -> None:
        """Forget the (stopped) program ``name``; unknown names are fine."""
        import xmlrpc.client

        try:
            self._call("removeProcessGroup", name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != BAD_NAME:
                raise _error(fault, name) from fault

    def start_group(self, group: str, wait: bool = True) -> bool:
        """Start every process of ``group``; False if all ran already.

        With ``wait`` it returns once each has stayed up startsecs (and raises
        :class:`ProcessFailed` for one that exited); without, at once.
        """
        results = self._group_call("startProcessGroup", group, wait=wait)
        failed = [r for r in results if r["status"] not in (SUCCESS, ALREADY_STARTED)]
        if failed:
            r = failed[0]
            raise _error_code(r["status"], r["description"], f"{group}:{r['name']}")
        return any(r["status"] == SUCCESS for r in results)

    def stop_group(self, group: str, processes) -> bool:
        """Stop the ``processes`` (names) of ``group`` and wait until they are gone; False if
        none ran. One by one: supervisord answers a ``stopProcess`` as soon as the process
        has exited, but a ``stopProcessGroup`` only at its next one-second tick."""
        stopped = False
        for process in processes:
            stopped = self.stop(f"{group}:{process}") or stopped
        return stopped

    def stop(self, name: str) -> bool:
        """Stop the process ``name`` and wait until it is gone; False if it was not running."""
        import xmlrpc.client

        try:
            self._call("stopProcess", name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode in (NOT_RUNNING, BAD_NAME):
                return False
            raise _error(fault, name) from fault
        return True

    def signal(self, name: str, signal: str) -> None:
        """Send ``signal`` (a name such as "HUP") to the process ``name``."""
        import xmlrpc.client

        try:
            self._call("signalProcess", name, signal)
        except xmlrpc.client.Fault as fault:
            raise _error(fault, name) from fault

    def _group_call(self, method: str, group: str, wait: bool = True) -> list:
        import xmlrpc.client

        try:
            return self._call(method, group, wait)
        except xmlrpc.client.Fault as fault:
            raise _error(fault, group) from fault


def _namespec(info) -> str:
    if info["group"] == info["name"]:
        return info["name"]
    return f"{info['group']}:{info['name']}"


def _error_code(code: int, text: str, name: str) -> SupervisorError:
    import xmlrpc.client

    return _error(xmlrpc.client.Fault(code, text), name)


def _error(fault, name: str) -> SupervisorError:
    """The sarge error for a supervisord Fault about program ``name``."""
    code = fault.faultCode
    if code in (ABNORMAL_TERMINATION, SPAWN_ERROR):
        return ProcessFailed(f"{name} exited as soon as it was started")
    if code in (NO_FILE, NOT_EXECUTABLE):
        return ProcessFailed(f"supervisord cannot run {name}: {fault.faultString}")
    if code == BAD_NAME:
        return SupervisorError(
            f"supervisord does not know {name}; run `sarge HOME init` or restart supervisord"
        )
    if code == STILL_RUNNING:
        return ProcessFailed(f"{name} is still running; stop it first")
    if code == CANT_REREAD:
        return SupervisorError(f"supervisord cannot read its configuration: {fault.faultString}")
    return SupervisorError(f"supervisord failed on {name}: {fault.faultString}")
