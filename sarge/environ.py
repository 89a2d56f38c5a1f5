"""The environment an instance's processes run in, and the one its requirements are
installed in: pure composition of values (the paths, the instance, the app's
variables, the user), no side effect but reading the variables' files.

One function builds it, for the launcher that supervisord runs (which then
execs the app) and for ``sarge HOME run`` alike, so both see the same
variables.
"""

from __future__ import annotations

import os

from .ownership import give
from .services.store import variables as service_variables
from .users import switches
from .variables import load_app_config, load_build_env


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
    services: dict | None = None,
) -> dict:
    """The environment of an instance: ``base``, then the app's config, then the URLs of
    its backing services (``services``: ``REDIS_URL`` and the like, passwords in them),
    then sarge's own.

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
    env.update(services or {})
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


def environment(layout, instance, process: str = "web", base=None, user=None) -> dict:
    """The environment of ``instance``'s ``process`` (and of ``run``), for ``user`` (a
    :class:`~sarge.users.RunAs`: its HOME, USER and LOGNAME) when given."""
    venv = instance.virtualenv or os.path.join(layout.instance_dir(instance.id), ".venv")
    config = layout.instance_config_path(instance.id)
    if not os.path.exists(config):  # not deployed: the app's variables as they are now
        config = layout.app_config_path(instance.application_name)
    base = os.environ if base is None else base
    if switches(user):
        base = user.inherit(base)
    env = build(
        base,
        socket=layout.app_socket(instance.id) if instance.unix_socket and process == "web"
        else None,
        app_config=load_app_config(config),
        home=layout.path,
        instance_id=instance.id,
        application_name=instance.application_name,
        port=instance.port_of(process),
        data_dir=layout.data_dir(instance.application_name),
        runtime_dir=layout.runtime_dir(instance.id),
        virtualenv=venv if os.path.isdir(os.path.join(venv, "bin")) else None,
        services=service_variables(layout, instance.application_name),
    )
    return user.env(env) if user is not None else env


def build_environment(layout, user) -> dict:
    """The environment the app's requirements are installed in, as ``user`` (a
    :class:`~sarge.users.RunAs`, or None: sarge's own user, whose environment it keeps).

    A user switched to gets what a switched process gets and how this machine reaches
    an index (:meth:`RunAs.inherit`; never root's tokens), and caches of its own in
    ``var/cache/USER``; both get the
    variables of ``etc/build.env`` (an index's credentials, kept out of argv and logs).
    """
    env = dict(os.environ)
    if switches(user):
        env = user.env(user.inherit(os.environ, build=True))
        cache = layout.cache_dir(user.name)
        give(cache, user, 0o700)
        # uv's default links files from its cache into the environment, which sarge
        # then takes back for root: the cache would change owner too
        env.update(PIP_CACHE_DIR=os.path.join(cache, "pip"),
                   UV_CACHE_DIR=os.path.join(cache, "uv"), UV_LINK_MODE="copy")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env.update(load_build_env(layout.build_env_path))
    return env
