"""The fleet file, ``fleet.toml``: the hosts, how to reach them, how to roll out.

::

    [ssh]
    identity = "~/.ssh/deploy_ed25519"   # default: ssh's own keys and agent
    known_hosts = "known_hosts"          # beside this file; ~/.ssh/known_hosts too
    gateway = "jump@bastion.example.com:22"
    connect_timeout = 10

    [rollout]
    limit = 1            # hosts at a time: a count, or "25%"
    wait = 0             # seconds between waves
    max_failures = 0     # failed hosts tolerated before the rollout stops

    [[hosts]]
    address = "deploy@web1.example.com:22"
    home = "/srv/shop"
    name = "web1"        # default: the host name
    roles = ["web"]
    listen = "0.0.0.0:80"  # --listen of a first deploy here (default: the command's)
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re

from ..errors import FleetFileError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ADDRESS = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@\s:\[\]]+)"
                     r"(?::(?P<port>\d{1,5}))?$")


@dataclasses.dataclass(frozen=True)
class Host:
    """One host: ``user@hostname:port`` and the home on it."""

    name: str
    user: str
    hostname: str
    port: int
    home: str
    roles: tuple = ()
    listen: str = ""

    @property
    def address(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


@dataclasses.dataclass(frozen=True)
class SSH:
    identity: str = ""
    known_hosts: str = ""
    gateway: str = ""
    connect_timeout: int = 10
    accept_unknown_hosts: bool = False


@dataclasses.dataclass(frozen=True)
class RolloutSettings:
    limit: object = 1
    wait: float = 0.0
    max_failures: int = 0


@dataclasses.dataclass(frozen=True)
class Fleet:
    path: str
    hosts: tuple
    ssh: SSH
    rollout: RolloutSettings

    @property
    def lock_path(self) -> str:
        """The fleet-wide lock, beside the fleet file."""
        return self.path + ".lock"

    def select(self, names=(), role=None) -> list:
        """The hosts named (``--hosts``, by name or address), else all; then those with
        ``role``. Unknown names and an empty selection are refused."""
        hosts = list(self.hosts)
        if names:
            wanted = [n for name in names for n in name.split(",") if n]
            known = {h.name: h for h in hosts} | {h.hostname: h for h in hosts}
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise FleetFileError(f"no host {unknown[0]!r} in {self.path}; its hosts: "
                                     + ", ".join(h.name for h in hosts))
            hosts = list(dict.fromkeys(known[n] for n in wanted))
        if role is not None:
            hosts = [h for h in hosts if role in h.roles]
        if not hosts:
            raise FleetFileError(f"no host of {self.path} matches"
                                 + (f" the role {role!r}" if role else " the selection"))
        return hosts


def parse_address(text: str, default_user: str | None = None):
    """``user@host:port`` (user and port optional) as (user, host, port)."""
    m = ADDRESS.match(str(text))
    if not m or (m.group("port") and not 0 < int(m.group("port")) < 65536):
        raise FleetFileError(f"{text!r} is not an SSH address: write user@host or "
                             "user@host:port")
    return (m.group("user") or default_user or getpass.getuser(), m.group("host").strip("[]"),
            int(m.group("port") or 22))


def load(path) -> Fleet:
    """Read and check the fleet file at ``path``."""
    path = os.path.abspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise FleetFileError(f"no fleet file {path}: write one (see `sarge-fleet --help`) "
                             "or name it with -f") from None
    except OSError as exc:
        raise FleetFileError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FleetFileError(f"{path} is not valid TOML: {exc}") from exc
    return Fleet(path, _hosts(path, data.get("hosts", [])), _ssh(path, data.get("ssh", {})),
                 _rollout(path, data.get("rollout", {})))


def _table(path, value, where, keys):
    if not isinstance(value, dict):
        raise FleetFileError(f"{path}: {where} must be a table")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise FleetFileError(f"{path}: unknown setting {unknown[0]!r} in {where} (known: "
                             + ", ".join(keys) + ")")
    return value


def _typed(path, value, kind, where):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FleetFileError(f"{path}: {where} must be {_kind_name(kind)}, not {value!r}")
    return value


def _kind_name(kind) -> str:
    return {str: "a string", int: "a whole number", bool: "true or false",
            list: "a list"}.get(kind, "a number")


def _hosts(path, items) -> tuple:
    if not isinstance(items, list) or not items:
        raise FleetFileError(f"{path} names no host: add a [[hosts]] table with address "
                             "and home")
    hosts = []
    for n, item in enumerate(items, 1):
        where = f"host {n}"
        _table(path, item, where, ("address", "home", "name", "roles", "listen"))
        if "address" not in item or "home" not in item:
            raise FleetFileError(f"{path}: {where} needs an address and a home")
        user, hostname, port = parse_address(_typed(path, item["address"], str, where))
        home = _typed(path, item["home"], str, f"{where}'s home")
        if not home.startswith("/"):
            raise FleetFileError(f"{path}: {where}'s home must be an absolute path, not "
                                 f"{home!r}")
        name = _typed(path, item.get("name", hostname), str, f"{where}'s name")
        if not NAME.match(name):
            raise FleetFileError(f"{path}: {where}'s name {name!r} must be letters, digits, "
                                 ". _ or - (up to 63)")
        roles = _typed(path, item.get("roles", []), list, f"{where}'s roles")
        hosts.append(Host(name, user, hostname, port, home.rstrip("/") or "/",
                          tuple(_typed(path, r, str, f"{where}'s roles") for r in roles),
                          _typed(path, item.get("listen", ""), str, f"{where}'s listen")))
    names = [h.name for h in hosts]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice:
        raise FleetFileError(f"{path}: two hosts are named {twice!r}: give each a name")
    return tuple(hosts)


def _ssh(path, data) -> SSH:
    fields = [f.name for f in dataclasses.fields(SSH)]
    _table(path, data, "[ssh]", fields)
    kinds = {"connect_timeout": int, "accept_unknown_hosts": bool}
    values = {key: _typed(path, value, kinds.get(key, str), f"[ssh] {key}")
              for key, value in data.items()}
    for key in ("identity", "known_hosts"):
        if values.get(key):
            values[key] = os.path.join(os.path.dirname(path), os.path.expanduser(values[key]))
    if values.get("gateway"):
        parse_address(values["gateway"])
    return SSH(**values)


def _rollout(path, data) -> RolloutSettings:
    _table(path, data, "[rollout]", ("limit", "wait", "max_failures"))
    limit = data.get("limit", 1)
    parse_limit(limit, where=f"{path}: [rollout] limit")
    wait = data.get("wait", 0)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
        raise FleetFileError(f"{path}: [rollout] wait must be seconds (0 or more)")
    failures = _typed(path, data.get("max_failures", 0), int, "[rollout] max_failures")
    if failures < 0:
        raise FleetFileError(f"{path}: [rollout] max_failures must be 0 or more")
    return RolloutSettings(limit, float(wait), failures)


def parse_limit(value, where="--limit"):
    """A wave's size as given: a count (``3``) or a share of the hosts (``"25%"``); as
    ``("count", n)`` or ``("percent", p)``."""
    text = str(value).strip()
    m = re.fullmatch(r"(\d{1,6})(%?)", text)
    if isinstance(value, bool) or not m or int(m.group(1)) == 0 or (
            m.group(2) and int(m.group(1)) > 100):
        raise FleetFileError(f"{where} must be a number of hosts (1 or more) or a "
                             f"percentage (1% to 100%), not {value!r}")
    return ("percent" if m.group(2) else "count", int(m.group(1)))
