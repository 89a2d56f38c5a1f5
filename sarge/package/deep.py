"""``sarge validate --deep``: the app run for real, in a throwaway folder, as the user
who validates (a developer's machine or CI, never a server's root): its code copied to
a scratch folder, a virtualenv made with sarge's own :class:`~sarge.build.Environments`
(the Python ``runtime.txt`` asks for), its build and release steps run there against a
scratch data folder (``$SARGE_DATA_DIR``), then its web entry point imported (gunicorn's,
uvicorn's, hypercorn's ``module:object``; a factory such as ``create_app()`` or
uvicorn's ``--factory`` called) and the object it names checked to be callable (a WSGI
or ASGI app). Each failure is an error of the Procfile's line."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

from .. import pythons
from ..build import Environments
from ..commands import exec_form
from ..errors import BuildError
from ..logs import tail
from .findings import error
from .source import stage

_SERVERS = ("gunicorn", "uvicorn", "hypercorn")
#: Imports the entry point in the app's folder and checks what it names.
_IMPORT = """
import importlib, sys
sys.path.insert(0, ".")
module, name, factory = sys.argv[1:4]
found = eval(name, vars(importlib.import_module(module)))
if factory == "1":
    found = found()
if not callable(found):
    sys.exit(f"{module}:{name} is a {type(found).__name__}, not a WSGI or ASGI app")
print(type(found).__name__)
"""
TIMEOUT = 300


def entry_point(command: str):
    """(module, object, factory) of the web ``command``'s server, or None when it runs
    none sarge knows (or none can be found in it)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    start = next((n for n, w in enumerate(words) if os.path.basename(w) in _SERVERS), None)
    if start is None:
        return None
    server, args = os.path.basename(words[start]), words[start + 1:]
    factory = "--factory" in args
    for word in args:
        module, sep, name = word.partition(":")
        if sep and _module(module) and _module(name.split("(")[0]):
            return module, name, factory
    if server == "gunicorn":  # gunicorn mysite.wsgi: its object `application`
        for before, word in zip([server, *args], args):
            if _module(word) and not before.startswith("-"):
                return word, "application", False
    return None


def _module(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def run(tree, processes: dict, *, pip_args=(), env=None, progress=None) -> list:
    """The findings of running the app of ``tree`` (its ``processes``: the Procfile's)."""
    progress = progress or (lambda message: None)
    scratch = tempfile.mkdtemp(prefix="sarge-deep-")
    try:
        return _run(tree, processes, scratch, pip_args, env or {}, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(tree, processes, scratch, pip_args, extra_env, progress) -> list:
    code, data = os.path.join(scratch, "app"), os.path.join(scratch, "data")
    os.mkdir(code)
    os.mkdir(data)
    stage(tree, code)
    log = os.path.join(scratch, "deep.log")
    own = pythons.Python(sys.executable, tuple(sys.version_info[:3]), "sarge's own")
    requirements = os.path.join(code, "requirements.txt")
    requirements = requirements if os.path.isfile(requirements) else None
    environments = Environments(os.path.join(scratch, "envs"), pip_args=pip_args)
    progress("deep: a throwaway virtualenv" + (", installing requirements.txt"
                                                if requirements else ""))
    try:
        python = pythons.choose(code, own)
        venv = environments.path_for(requirements, python=python)
        environments.ensure(venv, requirements, log, cwd=code, python=python)
    except BuildError as exc:
        return [error("requirements.txt" if requirements else None, None,
                      f"--deep: the virtualenv could not be made ({exc}): "
                      f"{_last(log)}")]
    env = {**os.environ, "PATH": os.path.join(venv, "bin") + os.pathsep
           + os.environ.get("PATH", os.defpath), "VIRTUAL_ENV": venv, "PORT": "8000",
           "SARGE_DATA_DIR": data, "SARGE_APP": "validate", **extra_env}
    env.pop("PYTHONPATH", None)
    lines = _lines(tree)
    for step in ("build", "release"):
        if step in processes:
            progress(f"deep: {step}: {processes[step]}")
            failed = _shell(processes[step], code, env, log)
            if failed:
                return [error("Procfile", lines.get(step), f"--deep: the {step} step "
                              f"failed ({failed}): fix it, or the deploy fails there")]
    web = processes.get("web")
    entry = entry_point(web) if web else None
    if entry is None:
        return []
    module, name, factory = entry
    progress(f"deep: import {module}:{name}")
    argv = [os.path.join(venv, "bin", "python"), "-c", _IMPORT, module, name,
            "1" if factory else "0"]
    failed = _call(argv, code, env, log)
    if failed:
        return [error("Procfile", lines.get("web"), f"--deep: the web entry point "
                      f"{module}:{name} does not load ({failed})")]
    return []


def _lines(tree) -> dict:
    """{type: its line in the Procfile}."""
    text = tree.text("Procfile") or ""
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        found.setdefault(line.partition(":")[0].strip(), number)
    return found


def _shell(command, cwd, env, log):
    return _call(["/bin/sh", "-c", exec_form(command)], cwd, env, log)


def _call(argv, cwd, env, log):
    """None when ``argv`` succeeds; else why not, with the last line it printed."""
    with open(log, "ab") as out:
        out.write(("$ " + " ".join(argv[:2]) + "\n").encode())
        out.flush()
        try:
            code = subprocess.call(argv, cwd=cwd, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"still running after {TIMEOUT} s"
        except OSError as exc:
            return f"cannot run {argv[0]}: {exc.strerror}"
    return None if code == 0 else f"exit status {code}: {_last(log)}"


def _last(log) -> str:
    lines = [line.strip() for line in tail(log, 5) if line.strip()]
    return lines[-1][:200] if lines else "it printed nothing"
