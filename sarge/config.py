"""The home's settings: ``etc/sarge.toml`` loaded and validated into :class:`Settings`.

Every key is optional; a missing key takes the default shown in the file that
``sarge HOME init`` writes.  An unknown key or a value of the wrong type is an
error that names the file and the key, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import sys

from .errors import SettingsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated contents of ``etc/sarge.toml``."""

    #: First and last port (inclusive) that instances are given.
    port_first: int = 5000
    port_last: int = 5999
    #: Size at which an instance's log is rotated, and how many old logs are kept.
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    #: A process must stay up this long to count as started (supervisord's startsecs).
    startsecs: int = 1
    #: Quick exits tolerated before the instance is marked FATAL (startretries).
    startretries: int = 3
    #: Seconds between SIGTERM and SIGKILL when stopping (stopwaitsecs).
    stopwaitsecs: int = 10


# (table, key) -> (attribute, lowest allowed value)
_KEYS = {
    ("ports", "first"): ("port_first", 1),
    ("ports", "last"): ("port_last", 1),
    ("logs", "max_bytes"): ("log_max_bytes", 0),
    ("logs", "backups"): ("log_backups", 0),
    ("processes", "startsecs"): ("startsecs", 0),
    ("processes", "startretries"): ("startretries", 0),
    ("processes", "stopwaitsecs"): ("stopwaitsecs", 1),
}


def parse(text: str, source: str = "sarge.toml") -> Settings:
    """Parse the text of a ``sarge.toml``; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{source}: not valid TOML: {exc}") from exc
    values = {}
    for table, content in data.items():
        if not isinstance(content, dict):
            raise SettingsError(f"{source}: unknown setting {table!r}")
        for key, value in content.items():
            if (table, key) not in _KEYS:
                raise SettingsError(f"{source}: unknown setting [{table}] {key}")
            attribute, lowest = _KEYS[table, key]
            if type(value) is not int or value < lowest:
                raise SettingsError(
                    f"{source}: [{table}] {key} must be a whole number >= {lowest}, not {value!r}"
                )
            values[attribute] = value
    settings = Settings(**values)
    if not settings.port_first <= settings.port_last <= 65535:
        raise SettingsError(
            f"{source}: the port range [ports] first={settings.port_first} "
            f"last={settings.port_last} must satisfy first <= last <= 65535"
        )
    return settings


def load(path) -> Settings:
    """Read and parse the settings file at ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text") from exc
    return parse(text, str(path))
