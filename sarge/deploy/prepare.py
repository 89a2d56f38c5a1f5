"""A new instance made ready to serve: unpack, environment, folders, build, static,
release, start (the steps before the health check; folders, build, static and release
only when the app has them)."""

from __future__ import annotations

import os

from .. import appfolders, build, manifest, ownership, pythons, unpack
from ..commands import exec_form, run_command
from ..environ import build_environment
from ..errors import BuildError, DeployError, SargeError
from ..home import MAX_SOCKET_PATH
from ..instance import scaled, uses_socket
from ..package.manifest import revision_of, verify
from ..package.wheels import install_args
from ..variables import freeze_config
from .singletons import overlapping, singletons


def prepare(deployer, instance, source, run_as, python, exclude=(), revision=None, scale=None):
    """Run the steps that make ``instance`` (just made by ``new``) a started version of its
    app built from ``source``, its processes as ``run_as``, its virtualenv with ``python``
    (the home's, a :class:`~sarge.pythons.Python`) unless the source asks for another;
    return its record then. An archive with a ``sarge-manifest.json`` is verified against
    it once unpacked, its revision recorded; ``revision``: the one a folder source's code
    was deployed with before (a redeploy's)."""
    home, steps = deployer.home, deployer.steps
    folder = home.instance_dir(instance.id)
    freeze_config(home, instance)
    with steps.step("unpack") as step:
        inner = unpack.unpack(source, folder, exclude=exclude)
        # an archive of `sarge package`: verified before anything of it runs. (A folder's
        # manifest is not: a redeploy's copy holds what its build step wrote.)
        packaged = verify(folder) if unpack.source_kind(source) == "tar" else None
        ownership.share_code(folder, run_as)  # readable, not writable, by the app's user
        step["detail"] = os.path.basename(source) + (
            f" (the content of its one folder, {inner}/)" if inner else "") + (
            f", {len(packaged['files'])} files as its manifest says" if packaged else "")
        revision = revision_of(folder, packaged) if packaged is not None else revision
        if revision is not None:
            instance = _record_revision(home, instance, revision)
    with steps.step("environment") as step:
        instance, commands, declared = _environment(deployer, instance, run_as, python, step,
                                                    install_args(folder, packaged), scale)
    data_dir = home.data_dir(instance.application_name)
    if declared.writable or declared.persistent:
        with steps.step("folders") as step:
            step["detail"] = appfolders.make(folder, declared, run_as, data_dir)
    if "build" in commands:
        with steps.step("build") as step:
            _build(home, instance, commands["build"], run_as, declared)
            appfolders.check_made(folder, declared, data_dir)
            step["detail"] = commands["build"]
    if declared.static:
        with steps.step("static") as step:
            step["detail"] = appfolders.open_static(folder, declared.static)
    if "release" in commands:
        with steps.step("release") as step:
            _run(home, instance, "release", commands["release"])
            step["detail"] = commands["release"]
    with steps.step("start") as step:
        home.lifecycle.start(instance.id, wait=False, processes=overlapping(instance))
        step["detail"] = start_detail(instance)
    return instance


def _run(home, instance, step, line, before=None):
    """Run the Procfile's ``step`` (its command ``line``) in the instance, as its app's
    user, its output in the instance's log; ``before()`` once the user's folders are made."""
    command = run_command(home, home.settings, instance, ["/bin/sh", "-c", exec_form(line)])
    try:
        command.prepare()
        if before is not None:
            before()
        build.run_logged(command.argv, home.log_path(instance.id), **command.popen_kwargs())
    except SargeError as exc:
        raise DeployError(f"the {step} command `{line}` failed") from exc


def _build(home, instance, line, run_as, declared):
    """The build step: the instance's code is the app user's while it runs (its declared
    folders are the user's already), root's again after, readable, not writable, by the
    user, whatever the build left (ownership.reclaim never follows a link)."""
    folder = home.instance_dir(instance.id)
    mine = declared.writable + declared.persistent
    try:
        _run(home, instance, "build", line,
             before=lambda: ownership.hand_over(folder, run_as, skip=mine))
    finally:
        ownership.reclaim(folder, run_as, skip=declared.writable)


def _record_revision(home, instance, revision):
    """The instance's record with its archive's revision (``list``, ``status``)."""
    with home.store.lock():
        instance = home.store.get(instance.id).replace(revision=revision)
        home.store.save(instance)
    return instance


def _environment(deployer, instance, run_as, home_python, step, pip_args=(), scale=None):
    """The Procfile read, the Python chosen and the virtualenv made or reused (for a
    requirements.txt, or a Python the source asks for: its ``python`` is then that one);
    (the record, the Procfile's build and release commands, the manifest). ``pip_args``:
    a packaged archive's wheelhouse, installed from alone; ``scale``: the app's process
    counts (:func:`scale_of`)."""
    home = deployer.home
    folder = home.instance_dir(instance.id)
    processes, commands = build.split_steps(build.read_procfile(folder))
    declared = manifest.load(folder, set(processes))
    processes = scaled(processes, scale_of(processes, declared, scale or {}))
    appfolders.check_source(folder, declared)
    python = pythons.choose(folder, home_python, run_as)
    pythons.check_runnable(python.path, python.why, run_as, "install one every user can run")
    requirements = os.path.join(folder, "requirements.txt")
    if not os.path.isfile(requirements):
        requirements = None
    venv = None
    if requirements is not None or python is not home_python:
        venv = deployer.environments.path_for(requirements, run_as, python=python)
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
                                             env=build_environment(home, run_as),
                                             python=python, pip_args=pip_args)
        step["detail"] = (("built " if built else "reused ") + os.path.basename(venv)
                          + f", {python.describe()}"
                          + (", from its wheelhouse" if built and pip_args else ""))
    else:
        step["detail"] = "no requirements.txt"
    return instance, commands, declared


def scale_of(processes, declared, scale) -> dict:
    """The counts of ``scale`` that this version's types take: a type it lacks is not
    scaled, nor a singleton (one at most, ever); a web process on ``$SARGE_SOCKET`` is
    refused more than one (one socket)."""
    counts = {t: n for t, n in scale.items()
              if t in processes and not declared.options(t).singleton}
    if counts.get("web", 1) > 1 and uses_socket(processes):
        raise BuildError(f"web is scaled to {counts['web']}, but it listens on "
                         "$SARGE_SOCKET, which one process holds: use $PORT (each process "
                         "gets its own), or `sarge HOME scale NAME web=1`")
    return counts


def start_detail(instance) -> str:
    """The ``start`` step's line: the types started, and the singletons held back."""
    held = singletons(instance)
    return ", ".join(sorted(overlapping(instance))) + (
        f" ({', '.join(held)} after the switch)" if held else "")
