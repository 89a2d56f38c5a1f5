"""The home's settings: ``etc/sarge.toml`` loaded and validated into :class:`Settings`.

Every key is optional; a missing key takes the default shown in the file that
``sarge HOME init`` writes.  An unknown key or a value of the wrong type is an
error that names the file and the key, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import re
import sys

from .errors import SettingsError, UsageError
from .instance import check_app_name

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
    #: Seconds between the stop signal and SIGKILL when stopping (stopwaitsecs), unless a
    #: type's stop_timeout (sarge-app.toml) says otherwise; longer than gunicorn's
    #: graceful timeout (30 s), so a graceful stop is never cut short.
    stopwaitsecs: int = 40
    #: More unexpected exits than this within crash_window seconds: the instance is
    #: stopped and shown fatal (supervisord alone restarts it forever).
    crash_limit: int = 10
    crash_window: int = 60
    #: Previous instances of an app kept (stopped) for rollback after a deploy.
    keep: int = 1
    #: Seconds the new version is watched after a switch (0: not watched), the share of
    #: 5xx answers that fails it, and the requests it takes to count that share.
    watch: int = 30
    watch_5xx: float = 0.05
    watch_requests: int = 20
    #: The logs of this many failed deploys' new instances kept in var/log/failed.
    keep_failed_logs: int = 5
    #: Who installs requirements: "pip", "uv", or "auto" (uv when installed).
    installer: str = "auto"
    #: Extra arguments for every install, e.g. ["--no-index", "--find-links", "/srv/wheels"].
    #: Never credentials: those go in etc/build.env (0600), as PIP_INDEX_URL and the like.
    pip_args: tuple = ()
    #: The interpreter apps' virtualenvs are made with ("" = the one sarge runs with).
    python: str = ""
    #: "nginx": sarge runs its own nginx; "system": it writes an include file for yours.
    frontend: str = "nginx"
    #: The nginx executable (own mode).
    nginx: str = "nginx"
    #: Longest wait for the old nginx workers to finish their requests after a switch.
    drain_timeout: int = 60
    #: ... but no longer than this once nothing has moved for so long (nginx's old workers
    #: read and wrote nothing, no connection to the old socket ended): idle WebSockets
    #: and long-polls are left, which the old version's graceful stop closes (0: wait).
    drain_quiet: int = 3
    #: System mode: the commands that test and reload the machine's nginx.
    test_command: str = "nginx -t"
    reload_command: str = "nginx -s reload"
    #: When supervisord runs as root: the user instances run as ("" = none named: nothing
    #: runs), nginx's workers ("" = nobody), and per-app users (:mod:`sarge.users`).
    user: str = ""
    frontend_user: str = ""
    app_users: tuple = ()
    #: [notify]: who is told of deploys (:mod:`sarge.notify`): addresses, webhooks, a
    #: command; on "success", "failure" or both; the SMTP server; each channel's timeout.
    notify_email: tuple = ()
    notify_webhook: tuple = ()
    notify_command: str = ""
    notify_on: tuple = ("failure", "success")
    notify_from: str = ""
    notify_smtp_host: str = "localhost"
    notify_smtp_port: int = 25
    notify_smtp_starttls: bool = False
    notify_smtp_login_file: str = ""
    notify_webhook_secret_file: str = ""
    notify_timeout: int = 5

    def user_for(self, app: str) -> str:
        """The user named for ``app``'s processes ("" when none is)."""
        return dict(self.app_users).get(app, self.user)


def _whole(lowest):
    def check(value):
        if type(value) is not int or value < lowest:
            return f"must be a whole number >= {lowest}"
    return check


def _one_of(*choices):
    def check(value):
        if value not in choices:
            return "must be one of " + ", ".join(repr(c) for c in choices)
    return check


def _text(value):
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\x00" in value:
        return "must be a non-empty string on one line"


def _user(value):
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?|", value):
        return "must be a user name or number"


def _app_users(value):
    if not isinstance(value, dict):
        return "must be a table of app = \"user\""
    for app, user in value.items():
        try:
            check_app_name(app)
        except UsageError:
            return f"has an invalid app name {app!r}"
        if _user(user) or not user:
            return f"names an invalid user for {app}"


def _strings(value):
    if not isinstance(value, list) or not all(
            isinstance(v, str) and v and "\x00" not in v for v in value):
        return "must be a list of strings"


_CREDENTIALS = re.compile(r"://[^/@\s]+@")


def _pip_args(value):
    problem = _strings(value)
    if problem is None and any(_CREDENTIALS.search(v) for v in value):
        # this file is readable by every user, and the arguments show in `ps`
        return ("must not hold credentials (user:password@ in a URL): put the index in "
                "etc/build.env (mode 0600) instead, as PIP_INDEX_URL=... (UV_INDEX_URL for "
                "uv)")
    return problem


def check_python(value):
    """None for a good ``[deploy] python`` value, else what is wrong with it."""
    return _python(value)


def _python(value):
    if not isinstance(value, str) or (value and not value.startswith("/")) or any(
            c in value for c in "\n\x00"):
        return "must be the absolute path of a Python interpreter, or \"\""


def _emails(value):
    if not isinstance(value, list) or not all(
            isinstance(v, str) and re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", v) for v in value):
        return "must be a list of e-mail addresses"


def _urls(value):
    if not isinstance(value, list) or not all(
            isinstance(v, str) and re.fullmatch(r"https?://[^\s]+", v) for v in value):
        return "must be a list of http:// or https:// URLs"


def _on(value):
    if not isinstance(value, list) or not set(value) <= {"success", "failure"}:
        return 'must be a list of "success" and "failure"'


def _share(value):
    if type(value) not in (int, float) or not 0 <= value <= 1:
        return "must be a number from 0 to 1"


def _flag(value):
    if type(value) is not bool:
        return "must be true or false"


def _file(value):
    if not isinstance(value, str) or (value and not value.startswith("/")) or any(
            c in value for c in "\n\x00"):
        return "must be the absolute path of a file, or \"\""


def _line(value):
    if not isinstance(value, str) or "\n" in value or "\x00" in value:
        return "must be a string on one line"


# (table, key) -> (attribute, check returning an error or None)
_KEYS = {
    ("ports", "first"): ("port_first", _whole(1)),
    ("ports", "last"): ("port_last", _whole(1)),
    ("logs", "max_bytes"): ("log_max_bytes", _whole(0)),
    ("logs", "backups"): ("log_backups", _whole(0)),
    ("processes", "startsecs"): ("startsecs", _whole(0)),
    ("processes", "startretries"): ("startretries", _whole(0)),
    ("processes", "stopwaitsecs"): ("stopwaitsecs", _whole(1)),
    ("processes", "crash_limit"): ("crash_limit", _whole(1)),
    ("processes", "crash_window"): ("crash_window", _whole(1)),
    ("deploy", "keep"): ("keep", _whole(0)),
    ("deploy", "watch"): ("watch", _whole(0)),
    ("deploy", "watch_5xx"): ("watch_5xx", _share),
    ("deploy", "watch_requests"): ("watch_requests", _whole(1)),
    ("deploy", "keep_failed_logs"): ("keep_failed_logs", _whole(0)),
    ("deploy", "installer"): ("installer", _one_of("auto", "pip", "uv")),
    ("deploy", "pip_args"): ("pip_args", _pip_args),
    ("deploy", "python"): ("python", _python),
    ("frontend", "mode"): ("frontend", _one_of("nginx", "system")),
    ("frontend", "nginx"): ("nginx", _text),
    ("frontend", "drain_timeout"): ("drain_timeout", _whole(1)),
    ("frontend", "drain_quiet"): ("drain_quiet", _whole(0)),
    ("frontend", "test_command"): ("test_command", _text),
    ("frontend", "reload_command"): ("reload_command", _text),
    ("users", "default"): ("user", _user),
    ("users", "frontend"): ("frontend_user", _user),
    ("users", "apps"): ("app_users", _app_users),
    ("notify", "email"): ("notify_email", _emails),
    ("notify", "webhook"): ("notify_webhook", _urls),
    ("notify", "command"): ("notify_command", _line),
    ("notify", "on"): ("notify_on", _on),
    ("notify", "from"): ("notify_from", _line),
    ("notify", "smtp_host"): ("notify_smtp_host", _text),
    ("notify", "smtp_port"): ("notify_smtp_port", _whole(1)),
    ("notify", "smtp_starttls"): ("notify_smtp_starttls", _flag),
    ("notify", "smtp_login_file"): ("notify_smtp_login_file", _file),
    ("notify", "webhook_secret_file"): ("notify_webhook_secret_file", _file),
    ("notify", "timeout"): ("notify_timeout", _whole(1)),
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
            attribute, check = _KEYS[table, key]
            problem = check(value)
            if problem:
                shown = "its value" if key == "pip_args" else repr(value)  # no secret shown
                raise SettingsError(f"{source}: [{table}] {key} {problem}, not {shown}")
            if isinstance(value, dict):
                value = sorted(value.items())
            values[attribute] = tuple(value) if isinstance(value, list) else value
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
