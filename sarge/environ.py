"""The environment an instance's processes run in.

One function builds it, for the launcher that supervisord runs (which then
execs ``server``) and for ``sarge HOME run`` alike, so both see the same
variables.  Nothing of it is ever written into supervisord's configuration:
the app's configured values (secrets, often) stay in their 0600 file until
the moment a process is exec'd.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

from .errors import SettingsError, UsageError


@dataclasses.dataclass(frozen=True)
class Command:
    """A program to exec: its argv, environment and working directory; the user it runs
    as (a :class:`~sarge.users.RunAs`, None: sarge's own) and the folders, with their
    modes, that user must own first (the app's data and runtime folders)."""

    argv: list
    env: dict
    cwd: str
    user: object = None
    folders: tuple = ()  # (path, mode, gid or None)
    umask: int | None = None

    def prepare(self) -> None:
        """Create the command's folders and give them to its user, who must also be able
        to read the folder it runs in (its instance's code)."""
        from .users import give, share_code

        try:
            for path, mode, gid in self.folders:
                give(path, self.user, mode, gid)
            share_code(self.cwd, self.user, unless_shared=True)
        except OSError as exc:
            raise SettingsError(f"cannot prepare {exc.filename}: {exc.strerror}") from exc

    def popen_kwargs(self) -> dict:
        """subprocess arguments that run the command as its user, in its folder."""
        extra = self.user.popen_kwargs() if self.user is not None else {}
        return {"env": self.env, "cwd": self.cwd, **extra}


def execute(command: Command, relay: bool = False):
    """Replace this process with ``command``: its folders prepared, in its folder, as its
    user. Raises :class:`SettingsError` when it cannot (prepare, run).

    With ``relay`` (``sarge run``), a command that switches users while a standard
    stream is a terminal runs on a terminal of its own (:mod:`sarge.terminal`) instead,
    and its exit status is returned: root's terminal never reaches the app's user.
    """
    import signal

    from . import terminal
    from .users import become, switches

    command.prepare()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; the command must not
    if relay and switches(command.user) and terminal.needs_pty():
        def child():  # pragma: no cover - runs in the forked child, then execs
            try:
                os.chdir(command.cwd)
                become(command.user, keep_terminal=True)
                os.execvpe(command.argv[0], command.argv, command.env)
            except OSError as exc:
                os.write(2, f"sarge: cannot run {command.argv[0]}: {exc.strerror}\n".encode())
        return terminal.run(child)
    try:
        os.chdir(command.cwd)
        if command.umask is not None:
            os.umask(command.umask)
        become(command.user)
        os.execvpe(command.argv[0], command.argv, command.env)
    except OSError as exc:
        raise SettingsError(f"cannot run {command.argv[0]}: {exc.strerror}") from exc


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


def save_app_config(path: str, config: dict) -> None:
    """Write the app's variables to ``path``, mode 0600, atomically."""
    from .files import write_file
    from .render import File

    for key in config:
        check_key(key)
    write_file(File(path, json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    mode=0o600))


def freeze_config(home, instance) -> None:
    """Give a deployed instance its own copy of its app's variables: later changes reach it
    only through a new deploy, and a rollback brings back the old values too."""
    path = home.instance_config_path(instance.id)
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    save_app_config(path, load_app_config(home.app_config_path(instance.application_name)))


def configure(home, application_name, assignments=(), unset=()) -> dict:
    """Set (``KEY=VALUE`` strings) and remove variables of an app in ``home``; return them all."""
    home.check()
    path = home.app_config_path(application_name)
    changes = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise UsageError(f"{assignment!r} is not KEY=VALUE")
        changes[check_key(key)] = check_value(key, value)
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


def build(
    base: dict,
    *,
    socket: str | None = None,
    app_config: dict,
    home: str,
    instance_id: str,
    application_name: str,
    port: int | None,
    data_dir: str,
    runtime_dir: str,
    virtualenv: str | None,
) -> dict:
    """The environment of an instance: ``base``, then the app's config, then sarge's own.

    sarge's variables (``PORT`` for the web process, and ``SARGE_SOCKET`` when it
    listens on a unix socket instead, ``SARGE_*``, and
    ``XDG_RUNTIME_DIR``, a private folder per instance: gunicorn puts its
    control socket there) win over the app's configuration;
    ``PYTHONUNBUFFERED=1`` is a default the configuration may override; an
    instance's virtualenv, if any, comes first on ``PATH``.
    """
    env = dict(base)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(app_config)
    env.pop("PORT", None)
    env.pop("SARGE_SOCKET", None)
    if port is not None:
        env["PORT"] = str(port)
    if socket is not None:
        env["SARGE_SOCKET"] = socket
    env.update(
        XDG_RUNTIME_DIR=runtime_dir,
        SARGE_HOME=home,
        SARGE_INSTANCE=instance_id,
        SARGE_APP=application_name,
        SARGE_DATA_DIR=data_dir,
    )
    if virtualenv is not None:
        env.pop("PYTHONHOME", None)
        env["VIRTUAL_ENV"] = virtualenv
        env["PATH"] = os.path.join(virtualenv, "bin") + os.pathsep + env.get("PATH", os.defpath)
    return env


# -- an instance's commands ---------------------------------------------------------------------

def run_as(home, application_name: str):
    """The user the app's processes run as in ``home`` (:func:`sarge.users.resolve`, which
    also refuses one not apart from nginx's workers and the other apps): None when sarge
    does not run as root, and so cannot switch."""
    from . import users

    settings = home.settings
    return users.resolve(settings.user_for(application_name), f"the app {application_name}",
                         home.path, home.settings_path,
                         apart_from=users.others(settings, application_name))


def environment(home, instance, process: str = "web", base=None, user=None) -> dict:
    """The environment of ``instance``'s ``process`` (and of ``run``), for ``user`` (a
    :class:`~sarge.users.RunAs`: its HOME, USER and LOGNAME) when given."""
    venv = instance.virtualenv or os.path.join(home.instance_dir(instance.id), ".venv")
    config = home.instance_config_path(instance.id)
    if not os.path.exists(config):  # not deployed: the app's variables as they are now
        config = home.app_config_path(instance.application_name)
    from .users import switches

    base = os.environ if base is None else base
    if switches(user):
        base = user.inherit(base)
    env = build(
        base,
        socket=home.app_socket(instance.id) if instance.unix_socket and process == "web"
        else None,
        app_config=load_app_config(config),
        home=home.path,
        instance_id=instance.id,
        application_name=instance.application_name,
        port=instance.port if process == "web" else None,
        data_dir=home.data_dir(instance.application_name),
        runtime_dir=home.runtime_dir(instance.id),
        virtualenv=venv if os.path.isdir(os.path.join(venv, "bin")) else None,
    )
    return user.env(env) if user is not None else env


def process_command(home, instance_id, process: str = "web") -> Command:
    """What the launcher execs for one process of an instance of ``home``."""
    instance = home.get(instance_id)
    if process not in instance.processes:
        raise UsageError(f"{instance.id} has no process {process!r}")
    command = instance.processes[process]
    argv = ["./server"] if command is None else ["/bin/sh", "-c", command]
    command = _command(home, instance, argv, process)
    if instance.unix_socket and process == "web":
        command = dataclasses.replace(command, umask=0o007)
    return command


def run_command(home, instance_id, argv=None) -> Command:
    """``argv`` (default: the user's shell) in the instance's folder and environment, as
    the app's user."""
    instance = home.get(instance_id)
    if not argv:
        argv = [os.environ.get("SHELL") or "/bin/sh"]
    return _command(home, instance, list(argv))


def _command(home, instance, argv, process="web") -> Command:
    user = run_as(home, instance.application_name)
    folders = [(home.data_dir(instance.application_name), 0o700, None),
               (home.runtime_dir(instance.id), 0o700, None)]
    if instance.unix_socket:
        # setgid: the socket the app makes there joins the folder's group, nginx's
        # workers', and the web process's umask (process_command) lets that group in
        group = socket_group(home, user)
        folders.append((os.path.dirname(home.app_socket(instance.id)),
                        0o2750 if group is not None else 0o700, group))
    return Command(argv, environment(home, instance, process, user=user),
                   home.instance_dir(instance.id), user=user, folders=tuple(folders))


def socket_group(home, user):
    """The group that may reach an instance's unix socket besides its user: nginx's
    workers' (their user's group: ``[users] frontend``, else nobody's for sarge's own
    nginx). None when sarge does not run as root (everything runs as one user)."""
    from .users import lookup

    if os.geteuid() != 0:
        return None
    settings = home.settings
    named = settings.frontend_user or ("nobody" if settings.frontend == "nginx" else "")
    if not named:
        raise SettingsError(
            f"{home.settings_path}: an app listens on $SARGE_SOCKET, which nginx's workers "
            "must reach: set [users] frontend to the user the machine's nginx workers run "
            "as (www-data, say)")
    return lookup(named, home.settings_path).gid


# -- the build's environment -----------------------------------------------------------------

def load_build_env(path: str) -> dict:
    """The variables of ``etc/build.env`` (``KEY=value`` lines; ``#`` comments): what the
    installers alone get, such as an index's credentials. {} when there is none; refused
    when users other than its owner can read it."""
    import stat

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


def build_environment(home, user) -> dict:
    """The environment the app's requirements are installed in, as ``user`` (a
    :class:`~sarge.users.RunAs`, or None: sarge's own user, whose environment it keeps).

    A user switched to gets what a switched process gets and how this machine reaches
    an index (:meth:`RunAs.inherit`; never root's tokens), and caches of its own in
    ``var/cache/USER``; both get the
    variables of ``etc/build.env`` (an index's credentials, kept out of argv and logs).
    """
    from .users import give, switches

    env = dict(os.environ)
    if switches(user):
        env = user.env(user.inherit(os.environ, build=True))
        cache = home.cache_dir(user.name)
        give(cache, user, 0o700)
        # uv's default links files from its cache into the environment, which sarge
        # then takes back for root: the cache would change owner too
        env.update(PIP_CACHE_DIR=os.path.join(cache, "pip"),
                   UV_CACHE_DIR=os.path.join(cache, "uv"), UV_LINK_MODE="copy")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env.update(load_build_env(home.build_env_path))
    return env
