"""Readiness: wait until a new instance answers its health check, or fail fast.

:func:`wait_ready` polls ``http://127.0.0.1:PORT/CHECK`` until it answers 2xx
or 3xx, within a deadline, and stops at once when the process has died
(``alive`` says why), so a version that crashes at start fails in a second,
not after the whole timeout.
"""

from __future__ import annotations

import http.client
import socket
import time

from .errors import DeployError


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the unix socket at ``socket_path`` (``$SARGE_SOCKET``)."""

    def __init__(self, socket_path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def headers_for(site) -> dict:
    """The headers of an app's health check, as nginx would send them: ``Host`` its first
    domain (or ``--check-host``), so that an app that allows only its own host names
    (Django's ``ALLOWED_HOSTS``) answers; ``X-Forwarded-Proto`` as its front-end serves
    it (``https`` with TLS)."""
    headers = {"X-Forwarded-Proto": "https" if site.tls is not None else "http",
               "X-Forwarded-For": "127.0.0.1"}
    if site.health_host:
        headers["Host"] = site.health_host
    return headers


def probe(port, path: str, timeout: float = 2.0, headers=None):
    """One GET to ``port`` (a number, or the path of a unix socket), with ``headers``;
    returns the HTTP status, or a short text saying why there was none."""
    conn = (UnixConnection(port, timeout) if isinstance(port, str)
            else http.client.HTTPConnection("127.0.0.1", port, timeout=timeout))
    try:
        conn.request("GET", path, headers={"User-Agent": "sarge-health-check",
                                           "Connection": "close", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status
    except (ConnectionRefusedError, FileNotFoundError):
        return "connection refused"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    except http.client.HTTPException as exc:
        return f"bad HTTP response ({type(exc).__name__})"
    finally:
        conn.close()


def wait_ready(port, path: str, timeout: float, alive=lambda: None,
               clock=time.monotonic, sleep=time.sleep, interval: float = 0.05,
               headers=None) -> float:
    """Wait until GET ``path`` on ``port`` (a number, or a unix socket's path), with
    ``headers`` (:func:`headers_for`), answers 2xx/3xx; return the seconds it took.

    ``alive()`` returns None while the process lives, or a message once it has
    died. Raises :class:`DeployError` on death or when ``timeout`` runs out.
    """
    start = clock()
    last = "no answer yet"
    while True:
        dead = alive()
        if dead:
            raise DeployError(dead)
        result = probe(port, path, timeout=min(5.0, max(0.5, timeout)), headers=headers)
        if isinstance(result, int) and 200 <= result < 400:
            return clock() - start
        last = f"HTTP {result}" if isinstance(result, int) else result
        if clock() - start > timeout:
            where = f"unix:{port}" if isinstance(port, str) else f"port {port}"
            host = f" (Host {headers['Host']})" if headers and "Host" in headers else ""
            raise DeployError(f"not healthy after {timeout:g}s: GET {path} on {where}{host} "
                              f"gave {last}")
        sleep(interval)
