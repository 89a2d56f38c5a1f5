"""Building an instance from its unpacked source: the Procfile, the virtualenv.

(Unpacking the source, safely, is :mod:`sarge.unpack`.)

- :func:`read_procfile` parses a Procfile into process types; :func:`split_steps`
  sets its ``build`` and ``release`` steps apart.
- :class:`Environments` builds content-addressed virtualenvs under
  ``var/envs``: the same requirements (and Python: its real path and version,
  :mod:`sarge.pythons`) reuse the same environment, so a code-only redeploy
  installs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys

from . import ownership, pythons, users
from .errors import BuildError
from .files import locked, remove_tree
from .instance import PROCESS_TYPE_RE, SERVER_ONLY

# -- the Procfile ------------------------------------------------------------------------------

def read_procfile(folder: str):
    """The process types of the app in ``folder``: ``{type: command}``.

    From its Procfile if it has one (which must name ``web``), else
    ``{"web": None}`` when it has an executable ``server`` (run directly).
    """
    path = os.path.join(folder, "Procfile")
    if not os.path.lexists(path):
        server = os.path.join(folder, "server")
        if os.path.isfile(server) and os.access(server, os.X_OK):
            return dict(SERVER_ONLY)
        raise BuildError("the source has neither a Procfile nor an executable server "
                         f"at its root, which holds {_some_names(folder)}")
    if not os.path.isfile(path) or os.path.islink(path):
        raise BuildError("the Procfile is not a regular file")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read the Procfile: {exc}") from exc
    processes, problems = parse_procfile(lines)
    if problems:
        number, message = problems[0]
        raise BuildError(f"Procfile line {number}: {message}" if number else message)
    return processes


def parse_procfile(lines):
    """({type: command}, [(line number or None, problem)]) of a Procfile's ``lines``: every
    problem, for ``sarge validate``; :func:`read_procfile` refuses the first."""
    processes, problems = {}, []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not sep or not PROCESS_TYPE_RE.fullmatch(name) or not command:
            problems.append((number, "not 'type: command' (type: lowercase letters, digits "
                                     f"and _): {line[:80]!r}"))
        elif "\x00" in command:
            problems.append((number, "has a NUL character"))
        elif name in processes:
            problems.append((number, f"{name!r} is defined twice"))
        else:
            processes[name] = command
    if "web" not in processes:
        problems.append((None, "the Procfile has no 'web' process, the one that serves $PORT"))
    return processes, problems


#: The Procfile's one-off steps of a deploy, not process types that run: ``build`` runs
#: in the new instance once its environment is ready (its code writable by the app's user
#: meanwhile), ``release`` after it (migrations: it changes what outlives the instance).
STEPS = ("build", "release")


def split_steps(processes: dict):
    """(the process types that run, {step: command}) of a :func:`read_procfile` result."""
    processes = dict(processes)
    return processes, {step: processes.pop(step) for step in STEPS if step in processes}


def _some_names(folder: str, shown: int = 6) -> str:
    """The first names in ``folder`` (a folder's with a /), for an error message."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(" ".join(e.name.split())  # on one line, whatever the name
                           + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries)
    except OSError:
        return "what sarge cannot list"
    if not names:
        return "nothing"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


# -- virtualenvs ---------------------------------------------------------------------------------

class Environments:
    """Content-addressed virtualenvs in ``folder`` (``var/envs``).

    ``python`` is the interpreter they are made with; ``installer`` is "pip", "uv" or
    "auto" (uv when it is installed, else pip); ``pip_args`` are added to every
    install (an index or a wheel folder); ``run`` runs a command (argv, log file,
    subprocess arguments) and raises on failure.
    """

    def __init__(self, folder: str, *, python: str = sys.executable, installer: str = "auto",
                 pip_args=(), run=None):
        self.folder = folder
        self.python = python
        self.installer = installer
        self.pip_args = list(pip_args)
        self.run = run or run_logged

    @classmethod
    def of(cls, folder: str, settings, python: str, **kwargs) -> "Environments":
        """The environments ``settings`` (a home's :class:`~sarge.config.Settings`) ask
        for: ``[deploy] python`` (else ``python``), installer and pip_args."""
        return cls(folder, python=settings.python or python, installer=settings.installer,
                   pip_args=settings.pip_args, **kwargs)

    def key(self, requirements: bytes, user=None, python=None) -> str:
        """The environment's name: a hash of the requirements, the Python that runs them
        (``python``, a :class:`~sarge.pythons.Python`; default: :attr:`python`): its real
        path and version, and the user who installs them (no user shares an
        environment another wrote)."""
        python = python or self.default_python()
        digest = hashlib.sha256()
        digest.update(os.path.realpath(python.path).encode() + b"\0")
        digest.update(("%d.%d.%d" % tuple(python.version)).encode() + b"\0")
        if users.switches(user):
            digest.update(f"uid={user.uid}\0".encode())
        digest.update(requirements)
        return digest.hexdigest()[:16]

    def default_python(self):
        """:attr:`python` as a :class:`~sarge.pythons.Python`."""
        return pythons.Python(self.python, pythons.version_of(self.python), "")

    def uv(self, user=None):
        """The uv executable to install with (one ``user`` can run), or None for pip."""
        if self.installer == "pip":
            return None
        # on PATH, or installed with sarge (pip install sarge-deploy[test] brings it)
        found = shutil.which("uv") or _beside_python("uv", sys.executable)
        if found is not None and users.switches(user) and not ownership.can_execute(found, user):
            if self.installer == "uv":
                raise BuildError(f"[deploy] installer = 'uv' but {user.name}, who installs "
                                 f"the app's requirements, cannot run {found}")
            found = None
        if found is None and self.installer == "uv":
            raise BuildError("[deploy] installer = 'uv' but uv is not installed")
        return found

    def path_for(self, requirements_path, user=None, python=None) -> str:
        """Where the environment for these requirements (None: none, an environment with
        nothing installed) and ``python`` is (or will be built)."""
        return os.path.join(self.folder, self.key(_read(requirements_path), user, python))

    def ensure(self, path: str, requirements_path, log_path: str, *, user=None,
               cwd=None, env=None, python=None, pip_args=()) -> bool:
        """Build the environment at ``path`` unless it is complete; True if it was built.

        The requirements are installed as ``user`` (a :class:`~sarge.users.RunAs`;
        None: sarge's own user), in ``cwd`` (the instance's folder: relative paths in
        requirements.txt are the app's), with the environment ``env``: a package's
        build runs the package's code, never as root unless the app runs as root.
        sarge makes the virtualenv itself first (no code of the app runs then), and
        takes it back after the install, readable but not writable by the user.
        ``pip_args`` come after the home's (a packaged archive's wheelhouse:
        ``--no-index --find-links DIR``).

        Record ``path`` as used (the instance's record) before calling this, so
        that :meth:`collect` in another deploy never removes it mid-build.
        An environment is built in place (virtualenvs are not relocatable) under a
        lock of its own, and counts only once its ``.sarge-complete`` marker is
        written: a build that was interrupted is started again from scratch.
        """
        requirements = _read(requirements_path)
        python = python or self.default_python()
        marker = os.path.join(path, ".sarge-complete")
        if os.path.isfile(marker):
            return False
        os.makedirs(self.folder, exist_ok=True)
        with locked(os.path.join(self.folder, f".{os.path.basename(path)}.lock")):
            if os.path.isfile(marker):  # built by another deploy while we waited
                return False
            remove_tree(path)
            try:
                argv = self._create(path, log_path, user, python.path)
                ownership.hand_over(path, user)
                if requirements_path is not None:
                    self.run(argv + ["-r", requirements_path] + self.pip_args
                             + list(pip_args), log_path,
                             cwd=cwd, env=env, **(user.popen_kwargs() if user else {}))
                ownership.reclaim(path, user)
                with open(marker, "wb") as f:
                    f.write(requirements)
            except BaseException:
                remove_tree(path)
                raise
        return True

    def _create(self, path: str, log_path: str, user, interpreter: str) -> list:
        """Make the empty virtualenv at ``path`` with ``interpreter`` as sarge's user (in the
        folder of the environments, where no app's file is); return the install command
        for it."""
        if users.switches(user) and not ownership.can_execute(interpreter, user):
            raise BuildError(
                f"{user.name}, who runs the app, cannot run {interpreter} (it lives in a "
                "folder that user cannot enter): set [deploy] python in etc/sarge.toml to "
                "an interpreter every user can run, such as /usr/bin/python3")
        uv = self.uv(user)
        python = os.path.join(path, "bin", "python")
        if uv:
            self.run([uv, "venv", "--quiet", "--python", interpreter, path], log_path,
                     cwd=self.folder)
            # --compile-bytecode: as pip does; without it every process start
            # compiles the app's dependencies again where .pyc cannot be written.
            return [uv, "pip", "install", "--compile-bytecode", "--python", python]
        # virtualenv is a module of sarge's own Python, which makes one for any other
        self.run([sys.executable, "-I", "-m", "virtualenv", "--quiet", "--python",
                  interpreter, path], log_path, cwd=self.folder)
        return [python, "-I", "-m", "pip", "install", "--disable-pip-version-check"]

    def collect(self, keep) -> list:
        """Remove the environments not in ``keep`` (paths); return the names removed."""
        removed = []
        if not os.path.isdir(self.folder):
            return removed
        keep = {os.path.basename(p) for p in keep if p}
        for name in os.listdir(self.folder):
            if name.startswith("."):
                if name.endswith(".lock") and name[1:-5] not in keep and not os.path.exists(
                        os.path.join(self.folder, name[1:-5])):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.folder, name))
                continue
            if name not in keep:
                remove_tree(os.path.join(self.folder, name))
                removed.append(name)
        return removed


def _read(requirements_path) -> bytes:
    if requirements_path is None:
        return b""
    with open(requirements_path, "rb") as f:
        return f.read()


def _beside_python(name, python):
    candidate = os.path.join(os.path.dirname(python), name)
    return candidate if os.access(candidate, os.X_OK) else None


_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def run_logged(argv, log_path: str, **popen) -> None:
    """Run ``argv`` with its output appended to ``log_path``; raise BuildError with its end.

    ``popen`` goes to :class:`subprocess.Popen`: env, cwd, and the user to run as.
    The command line is logged with any ``user:password@`` of a URL (an index in
    ``pip_args``, say) masked.
    """
    shown = _CREDENTIALS.sub(r"\1***@", " ".join(argv))
    with open(log_path, "ab") as log:
        log.write(("$ " + shown + "\n").encode())
        log.flush()
        try:
            code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, **popen)
        except OSError as exc:
            raise BuildError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    if code != 0:
        raise BuildError(f"{os.path.basename(argv[0])} {' '.join(argv[1:3])} ... failed "
                         f"(exit status {code})")
