"""XML-RPC over supervisord's unix socket, with the standard library alone.

supervisor's own client transport (``supervisor.xmlrpc.SupervisorTransport``) lives in
the module of its server side, whose import pulls in medusa, ``importlib.metadata``
and ``html.parser``: about a fifth of a short command's time (``sarge list``). This
one is the standard library's :class:`xmlrpc.client.Transport` (HTTP/1.1, one kept
connection, a retry when a kept connection was closed meanwhile) on an ``AF_UNIX``
socket, which is all that supervisorctl's transport does for a unix socket.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client


class UnixConnection(http.client.HTTPConnection):
    """An HTTP connection to the unix socket at ``path``."""

    def __init__(self, path: str, timeout=None):
        # the Host header says "localhost": supervisord does not look at it
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """A transport for :class:`xmlrpc.client.ServerProxy` to the socket at ``path``."""

    accept_gzip_encoding = False  # supervisord answers plain text

    def __init__(self, path: str, timeout=None):
        super().__init__()
        self.path, self.timeout = path, timeout

    def make_connection(self, host):
        if self._connection[1] is None:
            self._connection = host, UnixConnection(self.path, self.timeout)
        return self._connection[1]


def server_proxy(path: str, timeout=None) -> xmlrpc.client.ServerProxy:
    """A proxy for supervisord's XML-RPC interface on the unix socket at ``path``."""
    return xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                     transport=UnixTransport(path, timeout))
