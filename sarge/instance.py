"""The :class:`Instance` value: who an instance is and how its record reads on disk.

An instance id is the application name, a dash and six random letters and
digits (``web-jCCbfV``).  Names and ids are checked against strict patterns
before they are ever used in a path or a config file, so neither can escape
the home folder nor inject a line into supervisord's or nginx's configuration.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import string

from .errors import SettingsError, UsageError

APP_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SUFFIX_LENGTH = 6
SUFFIX_ALPHABET = string.ascii_letters + string.digits
INSTANCE_ID_RE = re.compile(r"([a-z][a-z0-9_-]{0,31})-[A-Za-z0-9]{%d}" % SUFFIX_LENGTH)

#: The keys ``sarge new`` accepts in its JSON argument.
NEW_KEYS = {"application_name"}


def check_app_name(name) -> str:
    """Return ``name`` if it is a valid application name, else raise :class:`UsageError`."""
    if not isinstance(name, str) or not APP_NAME_RE.fullmatch(name):
        raise UsageError(
            f"invalid application name {name!r}: use 1 to 32 lowercase letters, digits, "
            "'-' and '_', starting with a letter"
        )
    return name


def check_id(instance_id) -> str:
    """Return ``instance_id`` if it has the form of an instance id, else raise."""
    if not isinstance(instance_id, str) or not INSTANCE_ID_RE.fullmatch(instance_id):
        raise UsageError(
            f"invalid instance id {instance_id!r}: an id looks like web-jCCbfV "
            "(`sarge HOME list` shows them)"
        )
    return instance_id


def new_id(application_name: str) -> str:
    """A fresh random id for an instance of ``application_name``."""
    import secrets  # here: it imports hmac and hashlib, which only new needs

    suffix = "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))
    return f"{application_name}-{suffix}"


def parse_new_request(text: str) -> dict:
    """Parse and check the JSON argument of ``sarge new``."""
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"the instance description is not valid JSON: {exc}") from exc
    except RecursionError:  # json's parser recurses once per level of [ or {
        raise UsageError('the instance description is nested too deeply; it is one '
                         'object, like {"application_name": "web"}') from None
    if not isinstance(request, dict):
        raise UsageError(
            'the instance description must be a JSON object, like {"application_name": "web"}'
        )
    unknown = sorted(set(request) - NEW_KEYS)
    if unknown:
        raise UsageError(
            f"unknown key {unknown[0]!r} in the instance description "
            f"(known: {', '.join(sorted(NEW_KEYS))})"
        )
    if "application_name" not in request:
        raise UsageError('the instance description needs "application_name"')
    check_app_name(request["application_name"])
    return request


def utcnow() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


PROCESS_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: A process of a scaled type: ``web.2`` ... ``web.32`` beside ``web`` (the first).
SCALED_RE = re.compile(r"([a-z][a-z0-9_]{0,31})\.([2-9]|[12][0-9]|3[0-2])")
#: The most processes of one type (``sarge HOME scale``).
MAX_SCALE = 32


def base_type(process: str) -> str:
    """The Procfile type of a process: ``web`` for ``web.3``."""
    return process.partition(".")[0]


def scaled(processes: dict, scale: dict) -> dict:
    """``processes`` (type -> command) with ``scale[type] - 1`` more of each scaled type,
    named ``TYPE.2`` and up, the same command."""
    out = {}
    for name, command in processes.items():
        out[name] = command
        for n in range(2, scale.get(name, 1) + 1):
            out[f"{name}.{n}"] = command
    return out

#: The processes of an instance made by ``new``: ``web`` runs the folder's ``server``.
SERVER_ONLY = {"web": None}

_SOCKET_RE = re.compile(r"\$\{?SARGE_SOCKET\b")


def uses_socket(processes: dict) -> bool:
    """True when the web command listens on ``$SARGE_SOCKET`` (a Procfile's
    ``web: gunicorn app:app --bind unix:$SARGE_SOCKET``)."""
    return bool(processes.get("web") and _SOCKET_RE.search(processes["web"]))


@dataclasses.dataclass(frozen=True)
class Instance:
    """One instance of an application: its id, app, port and creation time.

    ``processes`` maps each process type to its command (``None``: run the
    folder's ``server``); ``web`` is the one that gets ``$PORT`` and traffic.
    ``virtualenv`` is the environment it runs in, if any; ``origin`` is
    ``"new"`` or ``"deploy"`` (only deploys clean up after deploys); ``unix_socket``
    says that its web process listens on ``$SARGE_SOCKET`` (a unix socket no other
    user can reach) instead of ``$PORT``. ``manifest`` is what the source's
    ``sarge-app.toml`` declares, as :meth:`sarge.manifest.Manifest.to_dict` gives it
    (empty: nothing declared). ``revision`` is what the deployed archive's
    ``sarge-manifest.json`` says of its source (:func:`sarge.package.manifest.revision_of`:
    git commit, dirty, the manifest's sha256), None for a source without one.
    """

    id: str
    application_name: str
    port: int
    created: str
    processes: dict = dataclasses.field(default_factory=lambda: dict(SERVER_ONLY))
    virtualenv: str | None = None
    origin: str = "new"
    unix_socket: bool = False
    manifest: dict = dataclasses.field(default_factory=dict)
    #: The ports of ``web.2`` and up (``web``'s is ``port``), when web is scaled.
    ports: tuple = ()
    revision: dict | None = None

    def replace(self, **changes) -> "Instance":
        return dataclasses.replace(self, **changes)

    def web_ports(self) -> list:
        """(process, port) of each web process: ``web`` on ``port``, ``web.N`` on theirs."""
        scaled = sorted((p for p in self.processes if base_type(p) == "web" and p != "web"),
                        key=lambda p: int(p.partition(".")[2]))
        return [("web", self.port)] + list(zip(scaled, self.ports))

    def port_of(self, process: str):
        """The port of a web process (None for the other types)."""
        return dict(self.web_ports()).get(process)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> "Instance":
        """Read a record written by :meth:`to_json`; ``source`` names it in errors."""
        try:
            data = json.loads(text)
            instance = cls(
                id=check_id(data["id"]),
                application_name=check_app_name(data["application_name"]),
                port=data["port"],
                created=data["created"],
                processes=data.get("processes", SERVER_ONLY),
                virtualenv=data.get("virtualenv"),
                origin=data.get("origin", "new"),
                unix_socket=data.get("unix_socket", False),
                manifest=data.get("manifest", {}),
                ports=tuple(data.get("ports", ())),
                revision=data.get("revision"),
            )
            if not isinstance(instance.processes, dict) or "web" not in instance.processes or any(
                not (PROCESS_TYPE_RE.fullmatch(k) or SCALED_RE.fullmatch(k))
                or not (v is None or isinstance(v, str))
                for k, v in instance.processes.items()
            ):
                raise ValueError("bad processes")
        except (ValueError, KeyError, TypeError, AttributeError, UsageError) as exc:
            raise SettingsError(
                f"the instance record {source} is damaged ({exc}); `sarge HOME repair` "
                "rebuilds it from the instance's folder and port"
            ) from exc
        if (type(instance.port) is not int or not isinstance(instance.created, str)
                or type(instance.unix_socket) is not bool
                or not isinstance(instance.manifest, dict)
                or not isinstance(instance.revision, (dict, type(None)))):
            raise SettingsError(f"the instance record {source} is damaged (bad port or date); "
                                "`sarge HOME repair` rebuilds it")
        return instance
