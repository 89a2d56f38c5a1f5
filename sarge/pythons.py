"""Which Python an app's virtualenv is made with, and whether the app's user can run it.

The home's Python is ``[deploy] python`` in ``etc/sarge.toml``, else the one sarge runs
with (:func:`configured`). An app's source may ask for another (:func:`requested`):

- ``runtime.txt``: ``python-3.11`` or ``python-3.11.2`` (Heroku's);
- else ``.python-version``: ``3.11`` or ``3.11.2`` (pyenv's; its first line).

:func:`choose` then takes the home's Python when it is that version (major and minor:
3.11.2 and 3.11.7 are the same Python to an app's code, and a patch level is not
enforced), else the first ``pythonX.Y`` on sarge's ``PATH``, then in
``/usr/local/bin`` and ``/usr/bin``, that is that version and that the app's user can
run; none is a :class:`BuildError` naming where it looked. No pyenv, conda or
download: what is installed, where every user finds it.

An app's user must be able to run its interpreter: the virtualenv's ``python``
leads to it. A Python under a private folder (a pyenv in ``/root``, mode 0700) would
be built with, then fail at every start with ``Permission denied``;
:func:`check_runnable` refuses it first, at ``init --user``, before each deploy makes
its instance, and for the Python a source asks for.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import sys

from . import ownership, users
from .errors import BuildError, SettingsError

#: Where :func:`choose` looks for ``pythonX.Y`` after sarge's own ``PATH``.
FOLDERS = ("/usr/local/bin", "/usr/bin")
#: What each file of a source may say.
_ASKED = {"runtime.txt": re.compile(r"python-(\d+)\.(\d+)(?:\.(\d+))?"),
          ".python-version": re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")}


@dataclasses.dataclass(frozen=True)
class Python:
    """An interpreter: its path, its version (major, minor, micro), and why it is the one
    (``"[deploy] python"``, ``"sarge's own"``, ``"runtime.txt asks 3.11"``)."""

    path: str
    version: tuple
    why: str

    def describe(self) -> str:
        return f"python {'.'.join(map(str, self.version))} ({self.path}; {self.why})"


def configured(settings, python: str = sys.executable) -> Python:
    """The home's Python: ``[deploy] python``, else ``python`` (sarge's own)."""
    if settings.python:
        return Python(settings.python, version_of(settings.python), "[deploy] python")
    return Python(python, version_of(python), "sarge's own")


@functools.lru_cache(maxsize=32)
def version_of(python: str) -> tuple:
    """(major, minor, micro) of the interpreter at ``python``; asked of it, unless it is
    this one. :class:`BuildError` when it does not run."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return tuple(sys.version_info[:3])
    try:
        out = subprocess.run([python, "-I", "-c", "import sys; print(*sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildError(f"cannot run {python}: {getattr(exc, 'strerror', None) or exc}"
                         ) from exc
    found = re.fullmatch(r"(\d+) (\d+) (\d+)\s*", out.stdout)
    if out.returncode != 0 or not found:
        raise BuildError(f"{python} is not a Python sarge can use (it said "
                         f"{(out.stderr or out.stdout).strip()[:100]!r})")
    return tuple(int(n) for n in found.groups())


def requested(folder: str):
    """(the file, (major, minor, micro or None)) of the Python the source in ``folder``
    asks for, or None; :class:`BuildError` for a file that says something else."""
    for name, pattern in _ASKED.items():
        path = os.path.join(folder, name)
        if not os.path.lexists(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                lines = [line.strip() for line in f.read(4096).splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"cannot read {name}: {exc}") from exc
        first = next((line for line in lines if line and not line.startswith("#")), "")
        found = pattern.fullmatch(first)
        if not found:
            example = "python-3.11 or python-3.11.2" if name == "runtime.txt" else "3.11"
            raise BuildError(f"{name} says {first[:40]!r}; sarge understands a version "
                             f"such as {example}")
        major, minor, micro = found.groups()
        return name, (int(major), int(minor), int(micro) if micro else None)
    return None


def choose(folder: str, home_python: Python, user=None, search_path=None) -> Python:
    """The Python for the source in ``folder``: the one it asks for (:func:`requested`),
    run-able by ``user``, else ``home_python``. ``search_path``: where to look first
    (default: sarge's ``PATH``)."""
    asked = requested(folder)
    if asked is None:
        return home_python
    name, version = asked
    shown = ".".join(str(n) for n in version if n is not None)
    why = f"{name} asks {shown}"
    if home_python.version[:2] == version[:2]:
        return dataclasses.replace(home_python, why=f"{why}; {home_python.why}")
    program = f"python{version[0]}.{version[1]}"
    folders = [f for f in (search_path if search_path is not None
                           else os.environ.get("PATH", os.defpath)).split(os.pathsep) if f]
    closed = None
    for candidate in dict.fromkeys(os.path.join(f, program) for f in [*folders, *FOLDERS]):
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if users.switches(user) and not ownership.can_execute(candidate, user):
            closed = closed or candidate
            continue
        try:
            found = version_of(candidate)
        except BuildError:
            continue
        if found[:2] == version[:2]:
            return Python(candidate, found, why)
    where = ", ".join(["PATH", *FOLDERS])
    if closed:
        raise BuildError(f"{name} asks for Python {shown}: {user.name}, who runs the app, "
                         f"cannot run {closed}, and there is no other {program} (looked in "
                         f"{where}); install one every user can run, in /usr/bin")
    raise BuildError(f"{name} asks for Python {shown}, and this machine has no {program} "
                     f"(looked in {where}): install it, or change {name}")


def check_runnable(path: str, why: str, user, fix: str) -> None:
    """Refuse (:class:`SettingsError`) the Python at ``path`` (``why``: whose it is) when
    ``user`` (a :class:`~sarge.users.RunAs`, who runs an app; None: sarge's own user)
    cannot run it; ``fix`` says what to do."""
    if user is None or user.uid in (0, os.geteuid()):
        return
    stop = ownership.barrier(path, user)
    if stop is None:
        return
    reason = ("may not execute it" if stop == os.path.realpath(path)
              else f"cannot enter {stop}")
    raise SettingsError(f"{user.name}, who runs the apps, cannot run {path} ({why}): it "
                        f"{reason}; {fix}")


def fix_hint(settings_path: str) -> str:
    """What to do about a Python the app's user cannot run, for a deploy's refusal."""
    return (f"set [deploy] python = \"{every_users()}\" in {settings_path} (a Python "
            "every user can run)")


def every_users() -> str:
    """A Python every user can likely run, to name in a hint."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return "/usr/bin/python3"
