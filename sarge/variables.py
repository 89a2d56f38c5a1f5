"""An app's variables (``sarge HOME config``): read, checked, saved, frozen per deploy;
and the installers' own variables (``etc/build.env``).

They live in ``etc/apps/APP.json`` (0600); each deploy gives its instance a copy
(``etc/apps/instances/ID.json``), read when a process is exec'd and never written
into supervisord's configuration, where ``supervisorctl`` and logs would show them.
"""

from __future__ import annotations

import json
import os
import re
import stat

from .errors import SettingsError, UsageError
from .files import File, write_file


def load_app_config(path: str) -> dict:
    """The app's configured variables from its JSON file; {} when it has none."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"the app configuration {path} cannot be read ({exc}); `sarge HOME repair` "
            "restores it from a deployed copy, or fix or remove it"
        ) from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise SettingsError(
            f"the app configuration {path} must be a JSON object of strings; "
            "`sarge HOME repair` restores it from a deployed copy, or fix or remove it"
        )
    return data


KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_key(key) -> str:
    """Return ``key`` if it can be an environment variable's name, else raise UsageError."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key) or len(key) > 256:
        raise UsageError(f"invalid variable name {key!r}: use letters, digits and _, "
                         "not starting with a digit")
    return key


def check_value(key: str, value) -> str:
    """Return ``value`` unless it has a NUL or a line break (which an environment file, a
    log line or an operator's shell would cut or misread)."""
    if not isinstance(value, str) or any(c in value for c in "\x00\n\r"):
        raise UsageError(f"invalid value for {key}: line breaks and NUL are not allowed")
    return value


def parse_assignments(assignments, what: str = "KEY=VALUE") -> dict:
    """``{KEY: VALUE}`` of ``KEY=VALUE`` strings (``config``'s, ``run -e``'s), each
    checked; a bad one is a :class:`UsageError` that names it (``what``: how the command
    line spells it)."""
    changes = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise UsageError(f"{assignment!r} is not {what}")
        changes[check_key(key)] = check_value(key, value)
    return changes


def read_assignments(path: str):
    """(assignments, unset) of a variables file (``config --from-file``): a ``KEY=VALUE``
    per line, ``-KEY`` to remove one, blank lines skipped. How ``sarge-fleet config``
    hands values over without a command line, where ``ps`` would show them."""
    assignments, unset = [], []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as exc:
        raise UsageError(f"cannot read the variables file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise UsageError(f"the variables file {path} is not UTF-8 text") from None
    for line in lines:
        if line.startswith("-"):
            unset.append(check_key(line[1:]))
        elif line:
            assignments.append(line)
    return assignments, unset


def save_app_config(path: str, config: dict) -> None:
    """Write the app's variables to ``path``, mode 0600, atomically."""
    for key in config:
        check_key(key)
    write_file(File(path, json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    mode=0o600))


def freeze_config(layout, instance) -> None:
    """Give a deployed instance its own copy of its app's variables: later changes reach it
    only through a new deploy, and a rollback brings back the old values too."""
    path = layout.instance_config_path(instance.id)
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    save_app_config(path, load_app_config(layout.app_config_path(instance.application_name)))


def configure(home, application_name, assignments=(), unset=()) -> dict:
    """Set (``KEY=VALUE`` strings) and remove variables of an app in ``home``; return them all."""
    home.check()
    path = home.app_config_path(application_name)
    changes = parse_assignments(assignments)
    for key in unset:
        check_key(key)
    if not changes and not unset:
        return load_app_config(path)
    with home.lock():
        config = load_app_config(path)
        config.update(changes)
        for key in unset:
            config.pop(key, None)
        save_app_config(path, config)
        home.log_action("config", f"{application_name} set {sorted(changes)} "
                                  f"unset {sorted(unset)}")
    return config


def load_build_env(path: str) -> dict:
    """The variables of ``etc/build.env`` (``KEY=value`` lines; ``#`` comments): what the
    installers alone get, such as an index's credentials. {} when there is none; refused
    when users other than its owner can read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            raise SettingsError(f"{path} holds secrets but other users can read it: "
                                f"chmod 600 {path}")
        lines = f.read().splitlines()
    values = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not KEY_RE.fullmatch(key.strip()):
            raise SettingsError(f"{path} line {number} is not VARIABLE=value")
        values[key.strip()] = value.strip()
    return values
