"""A client for the home's supervisord, over XML-RPC on its unix socket.

It speaks the protocol ``supervisorctl`` speaks (XML-RPC over HTTP on the socket,
:mod:`.transport`), so whatever sarge does, ``bin/supervisorctl status`` shows.  The
client knows a socket path and program names, nothing of homes or instances.

Every call goes through one translator: a socket error becomes
:class:`~sarge.errors.SupervisordNotRunning` (or :class:`~sarge.errors.SupervisorError`),
and every Fault supervisord answers a :class:`~sarge.errors.SupervisorError` (or a
subclass: :class:`~sarge.errors.SupervisordShuttingDown`,
:class:`~sarge.errors.ProcessFailed`) whose ``code`` is the fault's, one of
:class:`~.faults.Faults`, and whose message names the program and what to do
(:mod:`.faults`).
Methods that expect a fault (an unknown name, a program added already) test that
``code``.  Nothing of supervisor's is imported: its XML-RPC module is its server's.
"""

from __future__ import annotations

import errno
import time
import xmlrpc.client

from ..errors import SupervisordNotRunning, SupervisorError
from .faults import Faults, translate
from .rpc import API_VERSION
from .transport import server_proxy

_NOT_RUNNING_ERRNOS = {errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK}

class Supervisor:
    """supervisord behind the unix socket at ``socket_path``.

    ``hint`` ends the message given when supervisord does not answer (the
    home passes "start it with HOME/bin/supervisord"). ``expected_api`` is the version
    of sarge's extension this sarge speaks (default: :data:`sarge.supervisord.rpc.API_VERSION`):
    the first call asks supervisord for its own, once, and every call fails with a
    message that says to restart supervisord when it has another (it was started before
    sarge was upgraded). A supervisord without the extension is fine: the methods that
    would use it do without. ``connect`` makes the ``ServerProxy`` to talk through
    (default: one on ``socket_path``, :mod:`.transport`'s; the crash watch
    passes ``childutils.getRPCInterface``'s); it is called again after a socket error.
    """

    def __init__(self, socket_path: str, hint: str = "start it first", *,
                 expected_api: str | None = None, connect=None):
        self.socket_path = socket_path
        self.hint = hint
        self.expected_api = API_VERSION if expected_api is None else expected_api
        self.connect = connect or self._connect
        self._proxy = None
        self._extension = None  # not asked yet; then True, or False: supervisord has none

    def _connect(self):
        return server_proxy(self.socket_path)

    def _rpc(self):
        if self._proxy is None:
            self._proxy = self.connect()
        return self._proxy

    def _call(self, method: str, *args, about=None):
        """Call ``method`` (in the ``supervisor`` namespace unless it names another) with
        ``args``, once :meth:`has_extension` has checked the extension's version;
        supervisord's faults and socket errors become :mod:`sarge.errors` exceptions,
        whose message is about ``about`` (default: the first argument)."""
        if method != "sarge.getAPIVersion":
            self.has_extension()
        return self._send(method, args, about)

    def _send(self, method: str, args, about=None):
        name = method if "." in method else "supervisor." + method
        for attempt in (1, 2, 3):
            try:
                return getattr(self._rpc(), name)(*args)
            except xmlrpc.client.Fault as fault:
                subject = about or (args[0] if args else method)
                raise self.error(fault.faultCode, fault.faultString, subject, method) from fault
            except OSError as exc:
                self._proxy = None  # the transport keeps its connection: start afresh
                if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)) or (
                    exc.errno in _NOT_RUNNING_ERRNOS
                ):
                    raise SupervisordNotRunning(
                        f"supervisord is not running (nothing answers on {self.socket_path}); "
                        f"{self.hint}"
                    ) from exc
                if attempt == 3:
                    raise SupervisorError(
                        f"cannot talk to supervisord on {self.socket_path}: {exc}"
                    ) from exc
                # a connection kept from a supervisord that has since restarted: retry at
                # once; reset again, it may be dying: a moment later, a supervisord killed
                # mid-request refuses (or its socket is gone), and is said not to run
                if attempt == 2:
                    time.sleep(0.2)
            except xmlrpc.client.ProtocolError as exc:
                raise SupervisorError(
                    f"supervisord refused the request {method}: {exc.errmsg}"
                ) from exc

    def error(self, code: int, text: str, subject: str, method: str = "") -> SupervisorError:
        """The :mod:`sarge.errors` exception for supervisord's fault ``code`` (``text``:
        its fault string) on a call of ``method`` about ``subject`` (a program, group or
        file); its ``code`` is the fault's."""
        return translate(code, text, subject, method, self.hint)

    def has_extension(self) -> bool:
        """True when supervisord has sarge's extension, False when it has none; raises
        :class:`SupervisorError` when its version is not :attr:`expected_api`. supervisord
        is asked once (and asked again next time when it did not answer)."""
        if self._extension is None:
            try:
                version = self._send("sarge.getAPIVersion", ())
            except SupervisorError as exc:
                if exc.code != Faults.UNKNOWN_METHOD:
                    raise
                self._extension = False
            else:
                if version != self.expected_api:
                    raise SupervisorError(
                        f"supervisord runs version {version} of sarge's extension, this sarge "
                        f"needs {self.expected_api}: it was started before sarge was upgraded; "
                        f"restart it: `bin/supervisorctl shutdown`, then, once it has exited, "
                        f"{self.hint}")
                self._extension = True
        return self._extension

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
        try:
            return self._call("getProcessInfo", name)
        except SupervisorError as exc:
            if exc.code == Faults.BAD_NAME:
                return None
            raise

    def last_exit(self, name: str):
        """How the process ``name`` last exited ("exit status 3", "terminated by SIGKILL"),
        as sarge's extension remembers it; None when it has not exited, or when
        supervisord cannot say (no extension, or one older than this method)."""
        if not self.has_extension():
            return None
        try:
            return self._call("sarge.getLastExit", name) or None
        except SupervisorError as exc:
            if exc.code in (Faults.UNKNOWN_METHOD, Faults.BAD_NAME):
                return None
            raise

    def add(self, name: str, path: str) -> None:
        """Make the program ``name``, defined in the file at ``path``, known to supervisord.

        Uses sarge's ``addProgramFile`` (reads that file alone); a supervisord
        without it re-reads its whole configuration instead.
        """
        try:
            if self.has_extension():
                self._call("sarge.addProgramFile", path, about=name)
            else:
                self._call("reloadConfig", about=name)
                self._call("addProcessGroup", name)
        except SupervisorError as exc:
            if exc.code != Faults.ALREADY_ADDED:
                raise

    def set_autostart(self, group: str, autostart: bool) -> None:
        """Tell supervisord the group's new autostart (written to its file), so that its
        configuration matches the file; a supervisord without sarge's extension is left be."""
        if not self.has_extension():
            return
        try:
            self._call("sarge.setAutostart", group, bool(autostart))
        except SupervisorError as exc:
            if exc.code != Faults.BAD_NAME:
                raise

    def remove(self, name: str) -> None:
        """Forget the (stopped) program ``name``; unknown names are fine."""
        try:
            self._call("removeProcessGroup", name)
        except SupervisorError as exc:
            if exc.code != Faults.BAD_NAME:
                raise

    def start_group(self, group: str, wait: bool = True) -> bool:
        """Start every process of ``group``; False if all ran already.

        With ``wait`` it returns once each has stayed up startsecs (and raises
        :class:`ProcessFailed` for one that exited); without, at once.
        """
        results = self._call("startProcessGroup", group, wait)
        failed = [r for r in results if r["status"] not in (Faults.SUCCESS, Faults.ALREADY_STARTED)]
        if failed:
            r = failed[0]
            raise self.error(r["status"], r["description"], f"{group}:{r['name']}",
                             "startProcessGroup")
        return any(r["status"] == Faults.SUCCESS for r in results)

    def start_processes(self, group: str, processes, wait: bool = True) -> bool:
        """Start the ``processes`` (names) of ``group``, one by one, in that order; False if
        all ran already. ``wait`` as for :meth:`start_group`."""
        started = False
        for process in processes:
            try:
                self._call("startProcess", f"{group}:{process}", wait)
            except SupervisorError as exc:
                if exc.code != Faults.ALREADY_STARTED:
                    raise
            else:
                started = True
        return started

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
        try:
            self._call("stopProcess", name, True)
        except SupervisorError as exc:
            if exc.code in (Faults.NOT_RUNNING, Faults.BAD_NAME):
                return False
            raise
        return True

    def signal(self, name: str, signal: str) -> None:
        """Send ``signal`` (a name such as "HUP") to the process ``name``."""
        self._call("signalProcess", name, signal)


def _namespec(info) -> str:
    if info["group"] == info["name"]:
        return info["name"]
    return f"{info['group']}:{info['name']}"
