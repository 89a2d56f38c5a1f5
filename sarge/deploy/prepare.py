"""A new instance made ready to serve: unpack, environment, release, start (the steps
before the health check)."""

from __future__ import annotations

import os

from .. import build, manifest, ownership, unpack
from ..commands import exec_form, run_command
from ..environ import build_environment
from ..errors import BuildError, DeployError, SargeError
from ..home import MAX_SOCKET_PATH
from ..variables import freeze_config
from .singletons import overlapping, singletons


def prepare(deployer, instance, source, run_as):
    """Run the steps that make ``instance`` (just made by ``new``) a started version of its
    app built from ``source``, its processes as ``run_as``; return its record then."""
    home, steps = deployer.home, deployer.steps
    folder = home.instance_dir(instance.id)
    freeze_config(home, instance)
    with steps.step("unpack") as step:
        unpack.unpack(source, folder)
        ownership.share_code(folder, run_as)  # readable, not writable, by the app's user
        step["detail"] = os.path.basename(source)
    with steps.step("environment") as step:
        instance, release = _environment(deployer, instance, run_as, step)
    if release:
        with steps.step("release") as step:
            command = run_command(home, home.settings, instance,
                                  ["/bin/sh", "-c", exec_form(release)])
            try:
                command.prepare()
                build.run_logged(command.argv, home.log_path(instance.id),
                                 **command.popen_kwargs())
            except SargeError as exc:
                raise DeployError(f"the release command `{release}` failed") from exc
            step["detail"] = release
    with steps.step("start") as step:
        home.lifecycle.start(instance.id, wait=False, processes=overlapping(instance))
        step["detail"] = start_detail(instance)
    return instance


def _environment(deployer, instance, run_as, step):
    """The Procfile read and the virtualenv made or reused; (the record, the release
    command or None)."""
    home = deployer.home
    folder = home.instance_dir(instance.id)
    processes = build.read_procfile(folder)
    release = processes.pop("release", None)
    declared = manifest.load(folder, set(processes))
    requirements = os.path.join(folder, "requirements.txt")
    venv = None
    if os.path.isfile(requirements):
        venv = deployer.environments.path_for(requirements, run_as)
    instance = home.lifecycle.set_processes(instance.id, processes, venv,  # venv now in use
                                            manifest=declared)
    socket = home.app_socket(instance.id)
    if instance.unix_socket and len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        raise BuildError(f"the web process listens on $SARGE_SOCKET, but the socket {socket} "
                         "would be too long a path (108 bytes at most): use $PORT, or a "
                         "home with a shorter path")
    deployer.steps.fault_point("environment:install")
    if venv:
        built = deployer.environments.ensure(venv, requirements, home.log_path(instance.id),
                                             user=run_as, cwd=folder,
                                             env=build_environment(home, run_as))
        step["detail"] = ("built " if built else "reused ") + os.path.basename(venv)
    else:
        step["detail"] = "no requirements.txt"
    return instance, release


def start_detail(instance) -> str:
    """The ``start`` step's line: the types started, and the singletons held back."""
    held = singletons(instance)
    return ", ".join(sorted(overlapping(instance))) + (
        f" ({', '.join(held)} after the switch)" if held else "")
