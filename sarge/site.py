"""The :class:`Site` value: how the front-end serves an app beyond its address.

Stored with the app's state (``var/apps/APP.json``, key ``site``): the domains its
``server`` answers for (name-based virtual hosts: several apps on one port), the
``Host`` its health check sends, TLS, the limits of a request (body size, read
timeout, buffering) and the maintenance page. Pure values and their checks; what
nginx makes of them is :mod:`sarge.frontend`'s.
"""

from __future__ import annotations

import dataclasses
import re

from .errors import SettingsError, UsageError

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*")
_HOST_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?")
_SIZE_RE = re.compile(r"([0-9]{1,9})([kmg]?)")

#: nginx's own default is 1 MB: too small for the uploads of most sites.
DEFAULT_BODY_SIZE = "10m"
#: nginx's own default is 60 s: a long-poll of a minute ends in 504 with it.
DEFAULT_READ_TIMEOUT = 120
MAX_MESSAGE = 2000


@dataclasses.dataclass(frozen=True)
class TLS:
    """An app's certificate: the files the operator gave (``cert``, ``key``; sarge
    copies them into ``etc/tls/APP/``, named by ``digest``), the address HTTPS listens
    on, whether plain HTTP is redirected to it, and whether answers carry HSTS."""

    cert: str
    key: str
    #: Names the copies nginx reads (:mod:`sarge.frontend.tls`).
    digest: str = ""
    listen: str = "0.0.0.0:443"
    redirect: bool = True
    hsts: bool = False


@dataclasses.dataclass(frozen=True)
class Site:
    """See the module's docstring. ``maintenance`` is the page's message while the app
    is in maintenance (None: it serves)."""

    domains: tuple = ()
    check_host: str | None = None
    tls: TLS | None = None
    body_size: str = DEFAULT_BODY_SIZE
    read_timeout: int = DEFAULT_READ_TIMEOUT
    buffering: bool = True
    maintenance: str | None = None

    def replace(self, **changes) -> "Site":
        return dataclasses.replace(self, **changes)

    @property
    def health_host(self) -> str | None:
        """The ``Host`` of the health check: ``check_host``, else the first domain that is
        not a wildcard (``*.example.com``: ``www.example.com``), else None (the address)."""
        if self.check_host:
            return self.check_host
        for domain in self.domains:
            if not domain.startswith("*."):
                return domain
        return "www." + self.domains[0][2:] if self.domains else None

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["domains"] = list(self.domains)
        return data

    @classmethod
    def from_dict(cls, data) -> "Site":
        """The site a state file holds; :class:`SettingsError` when it is damaged."""
        if data is None:
            return cls()
        try:
            if not isinstance(data, dict):
                raise TypeError("not an object")
            tls = data.get("tls")
            return cls(
                domains=tuple(check_domain(d) for d in data.get("domains", ())),
                check_host=None if data.get("check_host") is None
                else check_host(data["check_host"]),
                tls=None if tls is None else TLS(
                    cert=_text(tls["cert"]), key=_text(tls["key"]),
                    digest=_text(tls.get("digest", "")),
                    listen=_text(tls.get("listen", "0.0.0.0:443")),
                    redirect=_flag(tls.get("redirect", True)),
                    hsts=_flag(tls.get("hsts", False))),
                body_size=check_size(data.get("body_size", DEFAULT_BODY_SIZE)),
                read_timeout=check_read_timeout(data.get("read_timeout",
                                                         DEFAULT_READ_TIMEOUT)),
                buffering=_flag(data.get("buffering", True)),
                maintenance=None if data.get("maintenance") is None
                else check_message(data["maintenance"]),
            )
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            raise SettingsError(f"its front-end settings are damaged ({exc})") from exc


def _text(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not true or false")
    return value


def check_domain(value) -> str:
    """A ``--domain``: a host name (lower-cased), or a wildcard ``*.example.com``."""
    text = str(value).strip().lower().rstrip(".")
    if not text.isascii():
        raise UsageError(f"invalid --domain {value!r}: give an international name in its "
                         "ASCII form (xn--...), as DNS has it")
    if not _DOMAIN_RE.fullmatch(text) or len(text) > 253:
        raise UsageError(f"invalid --domain {value!r}: give a host name such as "
                         "shop.example.com, or *.example.com for all its subdomains")
    return text


def check_domains(values) -> tuple:
    """Domains, checked, without repeats, in the order given."""
    seen = []
    for value in values:
        domain = check_domain(value)
        if domain not in seen:
            seen.append(domain)
    return tuple(seen)


def check_host(value) -> str:
    """A ``--check-host``: the ``Host`` header of the health check (``NAME[:PORT]``)."""
    text = str(value).strip().lower()
    if not _HOST_RE.fullmatch(text) or len(text) > 260:
        raise UsageError(f"invalid --check-host {value!r}: give a host name such as "
                         "shop.example.com")
    return text


def check_size(value) -> str:
    """A body size as nginx reads it: ``10m``, ``512k``, ``1g``, bytes, or 0 (no limit)."""
    text = str(value).strip().lower()
    if not _SIZE_RE.fullmatch(text):
        raise UsageError(f"invalid --body-size {value!r}: give a size such as 10m, 512k, "
                         "1g, or 0 for no limit")
    return text


def check_read_timeout(value) -> int:
    if type(value) is not int or not 1 <= value <= 86400:
        raise UsageError(f"invalid --read-timeout {value!r}: give whole seconds from 1 "
                         "to 86400")
    return value


def check_message(value) -> str:
    """A maintenance page's message: text of at most 2,000 characters."""
    if not isinstance(value, str) or len(value) > MAX_MESSAGE:
        raise UsageError(f"invalid --message: give a text of at most {MAX_MESSAGE} "
                         "characters")
    return value


def _optional(check):
    return lambda value: None if value is None else check(value)


def _checked_flag(name):
    def check(value):
        if not isinstance(value, bool):
            raise UsageError(f"invalid --{name} {value!r}: give on or off")
        return value
    return check


def _checked_tls(value):
    if value is not None and not isinstance(value, TLS):
        raise UsageError("invalid --tls: give a certificate and its key")
    return value


_CHECKS = {"domains": check_domains, "check_host": _optional(check_host),
           "tls": _checked_tls, "body_size": check_size,
           "read_timeout": check_read_timeout, "buffering": _checked_flag("buffering"),
           "maintenance": _optional(check_message)}


def checked(changes: dict) -> dict:
    """Changes of a :class:`Site` (field -> value), each checked (:class:`UsageError`)."""
    unknown = set(changes) - set(_CHECKS)
    if unknown:
        raise UsageError(f"unknown front-end settings: {', '.join(sorted(unknown))}")
    return {name: _CHECKS[name](value) for name, value in changes.items()}


def same_port(listen: str, other: str) -> bool:
    return listen.rpartition(":")[2] == other.rpartition(":")[2]


def listens(listen: str | None, site: Site) -> list:
    """The front-end addresses of an app: (address, tls), plain HTTP first."""
    found = [(listen, False)] if listen else []
    if site.tls is not None:
        found.append((site.tls.listen, True))
    return found


def conflict(name, listen, site, others) -> str | None:
    """Why the app ``name`` cannot listen where ``listen`` and ``site`` say beside the apps
    ``others`` ((name, listen, site)), or None. Apps share a port when each has domains,
    none of them the other's, and all give the same address; an app without domains has
    its port to itself; a port is HTTP or HTTPS, never both."""
    mine = listens(listen, site)
    if len(mine) == 2 and same_port(mine[0][0], mine[1][0]):
        return (f"port {mine[0][0].rpartition(':')[2]} cannot be both its HTTP and its "
                "HTTPS front-end: give --listen-tls another port")
    for address, tls in mine:
        for other, other_listen, other_site in others:
            if other == name:
                continue
            for other_address, other_tls in listens(other_listen, other_site):
                if not same_port(address, other_address):
                    continue
                port = address.rpartition(":")[2]
                if tls != other_tls:
                    return (f"port {port} is {other}'s {'HTTPS' if other_tls else 'HTTP'} "
                            f"front-end; choose another port")
                if not (site.domains and other_site.domains):
                    return (f"port {port} is already the front-end of the app {other}; "
                            "apps share a port when each has its --domain")
                if address != other_address:
                    return (f"port {port} is {other}'s front-end at {other_address}: "
                            f"give the same address to share it")
                for domain in site.domains:
                    if domain in other_site.domains:
                        return (f"--domain {domain} on port {port} is already the app "
                                f"{other}'s")
    return None

