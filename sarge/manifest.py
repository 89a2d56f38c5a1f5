"""What an app's source says about itself beyond its Procfile: ``sarge-app.toml``.

Every key is optional, and so is the file. A key sarge does not know, or a value of
the wrong kind, is refused in one line naming the file and the key (a typo never
passes silently)::

    # How each process type is stopped (the Procfile's types; web included).
    [processes.worker]
    stop_signal = "TERM"    # sent to the type's main process only (Celery: warm shutdown)
    stop_timeout = 600      # seconds it may take to finish its jobs; then its group is killed
    [processes.beat]
    singleton = true        # never two at once: the old one stops before the new one starts

    # Folders of the instance the app writes to at run time (Flask's instance/):
    # made for each instance, owned by the app's user. (Above every [table]: a key
    # after [static] belongs to it.)
    writable = ["instance"]
    # The same, kept from one deploy to the next: linked to $SARGE_DATA_DIR/NAME.
    persistent = []

    # URL prefix -> folder of the instance, served by nginx from the current instance.
    [static]
    "/static/" = "staticfiles"

:func:`load` reads it from an unpacked instance folder into a :class:`Manifest`.
Pure apart from reading that one file; imports only the standard library and
sarge's errors and names.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import sys

from .errors import BuildError
from .instance import PROCESS_TYPE_RE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FILENAME = "sarge-app.toml"

#: Signals a process type may be stopped with (supervisord's names).
STOP_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "USR1", "USR2")
#: The longest stop_timeout: a day.
MAX_STOP_TIMEOUT = 86400
#: The most bytes a sarge-app.toml may have.
MAX_SIZE = 64 * 1024

# A URL prefix nginx can take unquoted in a location: /static/, /media/files/.
_PREFIX_RE = re.compile(r"/(?:[A-Za-z0-9._~-]+/)*")
# A folder name part: no spaces, quotes, semicolons or braces (it reaches nginx's config).
_PART_RE = re.compile(r"[A-Za-z0-9._+@-]+")


@dataclasses.dataclass(frozen=True)
class ProcessOptions:
    """How one process type is stopped and whether two may run at once. ``None``: the
    home's default (``[processes] stopwaitsecs`` for the timeout)."""

    stop_signal: str = "TERM"
    stop_timeout: int | None = None
    singleton: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The validated contents of an app's ``sarge-app.toml``."""

    #: process type -> ProcessOptions, for the types the file names.
    processes: dict = dataclasses.field(default_factory=dict)
    #: (URL prefix, folder relative to the instance), longest prefix first.
    static: tuple = ()
    #: Folders (relative to the instance) made per instance for the app to write to.
    writable: tuple = ()
    #: Folders (relative to the instance) linked into the app's data folder.
    persistent: tuple = ()

    def options(self, process: str) -> ProcessOptions:
        """How ``process`` (a type, or a scaled one's ``TYPE.N``) is stopped (the defaults
        when the file does not say)."""
        return self.processes.get(process.partition(".")[0], ProcessOptions())

    def to_dict(self) -> dict:
        return {"processes": {k: v.to_dict() for k, v in sorted(self.processes.items())},
                "static": [list(pair) for pair in self.static],
                "writable": list(self.writable), "persistent": list(self.persistent)}

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
        """The manifest a record saved with :meth:`to_dict` (trusted: sarge wrote it)."""
        return cls(processes={k: ProcessOptions(**v)
                              for k, v in data.get("processes", {}).items()},
                   static=tuple(tuple(pair) for pair in data.get("static", ())),
                   writable=tuple(data.get("writable", ())),
                   persistent=tuple(data.get("persistent", ())))


def load(folder: str, process_types=None) -> Manifest:
    """The manifest of the app unpacked in ``folder`` (an empty one when it has no
    ``sarge-app.toml``); ``process_types``, when given, are the Procfile's, which
    ``[processes.TYPE]`` must name. Raise :class:`BuildError` naming the key otherwise."""
    path = os.path.join(folder, FILENAME)
    if not os.path.lexists(path):
        return Manifest()
    if os.path.islink(path) or not os.path.isfile(path):
        raise BuildError(f"{FILENAME} is not a regular file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SIZE + 1)
    except OSError as exc:
        raise BuildError(f"cannot read {FILENAME}: {exc.strerror}") from exc
    if len(raw) > MAX_SIZE:
        raise BuildError(f"{FILENAME} is larger than {MAX_SIZE} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BuildError(f"{FILENAME} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{FILENAME} is not valid TOML: {exc}") from None
    return parse(data, process_types)


def parse(data: dict, process_types=None) -> Manifest:
    """A :class:`Manifest` from ``sarge-app.toml``'s parsed ``data``."""
    unknown = sorted(set(data) - {"processes", "static", "writable", "persistent"})
    if unknown:
        raise _error(unknown[0], "is not a key sarge knows (processes, static, writable, "
                     "persistent)")
    processes = _table(data, "processes")
    static = _table(data, "static")
    writable = _folders(data, "writable")
    persistent = _folders(data, "persistent")
    both = sorted(set(writable) & set(persistent))
    if both:
        raise _error("persistent", f"names {both[0]!r}, which writable names too")
    nested = [(a, b) for a in writable + persistent for b in writable + persistent
              if a != b and b.startswith(a + "/")]
    if nested:
        raise _error("writable", f"{nested[0][1]!r} is inside {nested[0][0]!r}")
    static = _static(static)
    for prefix, folder in static:
        for kind, names in (("writable", writable), ("persistent", persistent)):
            clash = [n for n in names if _within(folder, n) or _within(n, folder)]
            if clash:
                raise _error(f"static.{prefix!r}", f"{folder!r} overlaps the {kind} folder "
                             f"{clash[0]!r}: nginx serves only folders the app cannot change")
    return Manifest(processes={t: _process(t, v, process_types) for t, v in processes.items()},
                    static=static, writable=writable, persistent=persistent)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def _error(key: str, problem: str) -> BuildError:
    return BuildError(f"{FILENAME}: {key} {problem}")


def _table(data, key) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _error(key, "must be a table")
    return value


def _process(name, value, process_types) -> ProcessOptions:
    key = f"processes.{name}"
    if not PROCESS_TYPE_RE.fullmatch(name):
        raise _error(key, "is not a process type (lowercase letters, digits and _)")
    if process_types is not None and name not in process_types:
        raise _error(key, "names a type the Procfile does not have "
                     f"({', '.join(sorted(process_types))})")
    if not isinstance(value, dict):
        raise _error(key, "must be a table")
    unknown = sorted(set(value) - {"stop_signal", "stop_timeout", "singleton"})
    if unknown:
        raise _error(f"{key}.{unknown[0]}", "is not a key sarge knows (stop_signal, "
                     "stop_timeout, singleton)")
    signal = value.get("stop_signal", "TERM")
    if signal not in STOP_SIGNALS:
        raise _error(f"{key}.stop_signal", f"must be one of {', '.join(STOP_SIGNALS)}")
    timeout = value.get("stop_timeout")
    if timeout is not None and (type(timeout) is not int
                                or not 1 <= timeout <= MAX_STOP_TIMEOUT):
        raise _error(f"{key}.stop_timeout", f"must be a whole number of seconds from 1 to "
                     f"{MAX_STOP_TIMEOUT}")
    singleton = value.get("singleton", False)
    if type(singleton) is not bool:
        raise _error(f"{key}.singleton", "must be true or false")
    if singleton and name == "web":
        raise _error(f"{key}.singleton", "cannot be true for web: the new version serves "
                     "before the old one stops")
    return ProcessOptions(signal, timeout, singleton)


def _static(table) -> tuple:
    pairs = []
    for prefix, folder in table.items():
        key = f"static.{prefix!r}"
        if prefix in ("writable", "persistent"):
            raise _error(key, "is not a URL prefix: a key written after [static] belongs to "
                         f"it; move {prefix} = [...] above [static]")
        if not _PREFIX_RE.fullmatch(prefix) or prefix == "/":
            raise _error(key, "must be a URL prefix like \"/static/\" (starts and ends with /, "
                         "letters, digits and ._~- between; not / alone)")
        if not isinstance(folder, str):
            raise _error(key, "must be a folder of the instance, as a string")
        pairs.append((prefix, _folder(key, folder)))
    return tuple(sorted(pairs, key=lambda p: (-len(p[0]), p[0])))


def _folders(data, key) -> tuple:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _error(key, "must be a list of folders of the instance")
    folders = tuple(_folder(key, v) for v in value)
    if len(set(folders)) != len(folders):
        raise _error(key, "names a folder twice")
    return folders


def _folder(key, value) -> str:
    """``value`` as a clean relative path inside the instance, or refused."""
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if value.startswith("/") or not parts or ".." in parts \
            or not all(_PART_RE.fullmatch(p) for p in parts):
        raise _error(key, f"{value!r} is not a folder inside the instance (a relative path "
                     "of letters, digits and ._+@-, no ..)")
    return posixpath.join(*parts)
