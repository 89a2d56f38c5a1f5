"""The :class:`AppState` value: what sarge remembers of an app between deploys.

Stored in ``var/apps/APP.json``: the front-end address it listens on, its
health check, which instance is current and which are kept for rollback, and how
the front-end serves it (:class:`~sarge.site.Site`: domains, TLS, limits,
maintenance).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re

from .errors import SettingsError, UsageError
from .files import read_text
from .instance import MAX_SCALE, PROCESS_TYPE_RE, check_app_name, check_id
from .site import Site

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_CHECK_RE = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")


@dataclasses.dataclass(frozen=True)
class AppState:
    """An app's front-end settings and its instances' roles."""

    name: str
    listen: str | None = None
    check: str = "/"
    timeout: int = 60
    current: str | None = None
    #: Instances kept for rollback, newest first.
    previous: tuple = ()
    #: How the front-end serves it beyond ``listen`` (:class:`~sarge.site.Site`).
    site: Site = Site()
    #: How many processes of each type its instances run (``sarge HOME scale``), where
    #: not one.
    scale: dict = dataclasses.field(default_factory=dict)

    def promote(self, instance_id: str) -> "AppState":
        """This state with ``instance_id`` current, the current one first among the kept
        ones (a deploy's new instance, a route's target, a rollback's)."""
        kept = ((self.current,) if self.current else ()) + self.previous
        return self.replace(current=instance_id,
                            previous=tuple(p for p in kept if p != instance_id))

    def replace(self, **changes) -> "AppState":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["previous"] = list(self.previous)
        data["site"] = self.site.to_dict()
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> "AppState":
        try:
            data = json.loads(text)
            state = cls(
                name=check_app_name(data["name"]),
                listen=None if data.get("listen") is None else parse_listen(data["listen"]),
                check=check_path(data.get("check", "/")),
                timeout=check_timeout(data.get("timeout", 60)),
                current=None if data.get("current") is None else check_id(data["current"]),
                previous=tuple(check_id(i) for i in data.get("previous", ())),
                site=Site.from_dict(data.get("site")),
                scale=check_scale(data.get("scale", {})),
            )
        except (ValueError, KeyError, TypeError, UsageError, SettingsError) as exc:
            raise SettingsError(
                f"the app state {source} is damaged ({exc}); `sarge HOME repair` rebuilds "
                "it from the front-end's configuration"
            ) from exc
        return state


def parse_listen(value) -> str:
    """Normalize a ``--listen`` value: ``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``."""
    text = str(value)
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "0.0.0.0", text
    if not port.isdigit() or not 1 <= int(port) <= 65535 or port != str(int(port)):
        raise UsageError(f"invalid --listen {text!r}: use PORT or HOST:PORT, such as "
                         "127.0.0.1:8000 or 8000 (all addresses)")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UsageError(f"invalid --listen {text!r}: {host} is not an IPv6 address") from None
    elif host == "*":
        host = "0.0.0.0"
    elif not _HOSTNAME_RE.fullmatch(host) or len(host) > 253:
        raise UsageError(f"invalid --listen {text!r}: {host!r} is not an address or host name")
    return f"{host}:{int(port)}"


def listen_port(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def check_path(value) -> str:
    """A ``--check`` value: an absolute URL path (with an optional query)."""
    if not isinstance(value, str) or not _CHECK_RE.fullmatch(value) or len(value) > 1000:
        raise UsageError(f"invalid --check {value!r}: give a URL path such as / or /health")
    return value


def check_timeout(value) -> int:
    if type(value) is not int or not 1 <= value <= 86400:
        raise UsageError(f"invalid --timeout {value!r}: give whole seconds from 1 to 86400")
    return value


def check_scale(counts) -> dict:
    """Counts of process types (``{"web": 4}``), each a type's name and a whole number
    from 1 to 32; the ones of 1 left out (the default)."""
    if not isinstance(counts, dict):
        raise UsageError("give counts as TYPE=N, such as web=4")
    checked = {}
    for name, count in counts.items():
        if not isinstance(name, str) or not PROCESS_TYPE_RE.fullmatch(name):
            raise UsageError(f"invalid process type {name!r}: lower-case letters, digits "
                             "and _, as in the Procfile")
        if type(count) is not int or not 1 <= count <= MAX_SCALE:
            raise UsageError(f"invalid count for {name}: {count!r}; give a whole number "
                             f"from 1 to {MAX_SCALE}")
        if count != 1:
            checked[name] = count
    return dict(sorted(checked.items()))


def load_state(path: str, name: str) -> AppState:
    """The app's state stored at ``path`` (a fresh one when there is none)."""
    text = read_text(path)  # one line naming the file when it is not UTF-8
    return AppState(name) if text is None else AppState.from_json(text, path)


def load_states(folder: str) -> list:
    """Every app's state in ``folder`` (``var/apps``), by name."""
    names = sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))
    return [load_state(os.path.join(folder, n + ".json"), n) for n in names]
