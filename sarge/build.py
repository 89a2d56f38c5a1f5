"""Building an instance from a source: safe unpacking, the Procfile, the virtualenv.

- :func:`unpack` copies a directory or extracts a tar archive into the
  instance folder, after checking every member: absolute paths, ``..``, links
  that point out of the folder (or members written through a link), device
  nodes and FIFOs are refused, and so is an archive larger than the free space.
- :func:`read_procfile` parses a Procfile into process types.
- :class:`Environments` builds content-addressed virtualenvs under
  ``var/envs``: the same requirements (and Python) reuse the same
  environment, so a code-only redeploy installs nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import tarfile

from .errors import BuildError
from .files import remove_tree
from .instance import PROCESS_TYPE_RE, SERVER_ONLY

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


# -- unpacking -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Member:
    """What the checks need to know of one file of a source."""

    name: str          # relative path, '/'-separated
    kind: str          # 'file', 'dir', 'symlink', 'hardlink' or 'special'
    size: int = 0
    target: str = ""   # link target, for links


def check_members(members) -> int:
    """Refuse unsafe members (raise :class:`BuildError`); return the total size of files."""
    members = list(members)
    links = set()
    symlinks = {"/".join(p for p in m.name.split("/") if p not in ("", ".")): m.target
                for m in members if m.kind == "symlink"}
    total = 0
    for m in members:
        name = m.name
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise BuildError(f"refused: {name!r} has an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise BuildError(f"refused: {name!r} points out of the instance ('..')")
        path = "/".join(parts)
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise BuildError(f"refused: {name!r} would be written through the link "
                                 f"{'/'.join(parts[:i])!r}")
        if m.kind == "special":
            raise BuildError(f"refused: {name!r} is a device node, FIFO or socket")
        if m.kind in ("symlink", "hardlink"):
            target = m.target
            if m.kind == "symlink":
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            else:
                resolved = posixpath.normpath(target)
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise BuildError(f"refused: the link {name!r} points out of the instance "
                                 f"(to {target!r})")
            if m.kind == "symlink" and _follow(path.split("/")[:-1], target, symlinks) is None:
                # through the other links it passes, it leads out (or round in a loop)
                raise BuildError(f"refused: the link {name!r} points out of the instance "
                                 f"through other links (to {target!r})")
            links.add(path)
        elif m.kind == "file":
            total += m.size
    return total


def _follow(folder: list, target: str, links: dict, hops=None):
    """Where ``target``, followed from ``folder`` (a list of names), leads inside the
    instance, following the links among the members as the kernel would; None when
    it leads out. As for the kernel, 40 links followed in all end the walk (a loop
    leads nowhere, so not out either)."""
    hops = [0] if hops is None else hops
    if target.startswith("/"):
        return None
    parts = list(folder)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
        key = "/".join(parts)
        if key in links:
            hops[0] += 1
            if hops[0] > 40:
                return parts  # ELOOP for the kernel: it stops here, inside
            parts = _follow(parts[:-1], links[key], links, hops)
            if parts is None:
                return None
    return parts


def _tar_members(archive) -> list:
    result = []
    for info in archive.getmembers():
        if info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        elif info.isdir():
            kind = "dir"
        elif info.isreg():
            kind = "file"
        else:
            kind = "special"
        result.append(Member(info.name, kind, info.size, info.linkname))
    return result


def _dir_members(source) -> list:
    result = []
    for root, dirs, files in os.walk(source):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, source).replace(os.sep, "/")
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                result.append(Member(rel, "symlink", 0, os.readlink(path)))
            elif stat.S_ISDIR(st.st_mode):
                result.append(Member(rel, "dir"))
            elif stat.S_ISREG(st.st_mode):
                result.append(Member(rel, "file", st.st_size))
            else:
                result.append(Member(rel, "special"))
    return result


def _check_space(target, needed) -> None:
    st = os.statvfs(target)
    free = st.f_bavail * st.f_frsize
    if needed > free:
        raise BuildError(f"refused: the source needs {needed} bytes and {target} has {free} free")


def source_kind(source: str) -> str:
    """'dir' or 'tar' for a usable source; raise :class:`BuildError` otherwise."""
    if os.path.isdir(source):
        return "dir"
    if not os.path.isfile(source):
        raise BuildError(f"no such source: {source}")
    if not source.endswith(ARCHIVE_SUFFIXES):
        raise BuildError(f"{source} is neither a directory nor a .tar, .tar.gz or .tgz archive")
    return "tar"


def unpack(source: str, target: str) -> None:
    """Copy or extract ``source`` into the existing folder ``target``, safely."""
    if source_kind(source) == "dir":
        _check_space(target, check_members(_dir_members(source)))
        try:
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        except shutil.Error as exc:  # one (src, dst, why) per file that failed: say one
            failures = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
            first = str(failures[0][2]) if failures else str(exc)
            more = f" (and {len(failures) - 1} more files)" if len(failures) > 1 else ""
            raise BuildError(f"cannot copy {source}: {first}{more}") from exc
        except OSError as exc:
            raise BuildError(f"cannot copy {source}: {exc}") from exc
        return
    try:
        with tarfile.open(source) as archive:
            members = _tar_members(archive)
            _check_space(target, check_members(members))
            if hasattr(tarfile, "data_filter"):
                archive.extractall(target, filter="data")
            else:  # pragma: no cover - Pythons without extraction filters
                archive.extractall(target)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) and exc.errno:
            raise BuildError(f"cannot unpack {source}: {exc.strerror}") from exc
        raise BuildError(f"{source} is not a readable tar archive ({exc})") from exc


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
        raise BuildError("the source has neither a Procfile nor an executable server")
    if not os.path.isfile(path) or os.path.islink(path):
        raise BuildError("the Procfile is not a regular file")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read the Procfile: {exc}") from exc
    processes = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not sep or not PROCESS_TYPE_RE.fullmatch(name) or not command:
            raise BuildError(f"Procfile line {number} is not 'type: command' "
                             f"(type: lowercase letters, digits and _): {line[:80]!r}")
        if "\x00" in command:
            raise BuildError(f"Procfile line {number} has a NUL character")
        if name in processes:
            raise BuildError(f"Procfile line {number}: {name!r} is defined twice")
        processes[name] = command
    if "web" not in processes:
        raise BuildError("the Procfile has no 'web' process, the one that serves $PORT")
    return processes


# -- virtualenvs ---------------------------------------------------------------------------------

class Environments:
    """Content-addressed virtualenvs in ``folder`` (``var/envs``).

    ``installer`` is "pip", "uv" or "auto" (uv when it is installed, else pip);
    ``pip_args`` are added to every install (an index or a wheel folder);
    ``run`` runs a command (argv, log file) and raises on failure.
    """

    def __init__(self, folder: str, *, python: str = sys.executable, installer: str = "auto",
                 pip_args=(), run=None):
        self.folder = folder
        self.python = python
        self.installer = installer
        self.pip_args = list(pip_args)
        self.run = run or run_logged

    def key(self, requirements: bytes) -> str:
        """The environment's name: a hash of the requirements and the Python that runs them."""
        digest = hashlib.sha256()
        digest.update(os.path.realpath(self.python).encode() + b"\0")
        digest.update(("%d.%d.%d" % sys.version_info[:3]).encode() + b"\0")
        digest.update(requirements)
        return digest.hexdigest()[:16]

    def uv(self):
        """The uv executable to install with, or None for pip."""
        if self.installer == "pip":
            return None
        found = shutil.which("uv") or _beside_python("uv", self.python)
        if found is None and self.installer == "uv":
            raise BuildError("[deploy] installer = 'uv' but uv is not installed")
        return found

    def path_for(self, requirements_path: str) -> str:
        """Where the environment for these requirements is (or will be built)."""
        with open(requirements_path, "rb") as f:
            return os.path.join(self.folder, self.key(f.read()))

    def ensure(self, path: str, requirements_path: str, log_path: str) -> bool:
        """Build the environment at ``path`` unless it is complete; True if it was built.

        Record ``path`` as used (the instance's record) before calling this, so
        that :meth:`collect` in another deploy never removes it mid-build.
        An environment is built in place (virtualenvs are not relocatable) under a
        lock of its own, and counts only once its ``.sarge-complete`` marker is
        written: a build that was interrupted is started again from scratch.
        """
        import fcntl

        with open(requirements_path, "rb") as f:
            requirements = f.read()
        key = os.path.basename(path)
        marker = os.path.join(path, ".sarge-complete")
        if os.path.isfile(marker):
            return False
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(os.path.join(self.folder, f".{key}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.isfile(marker):  # built by another deploy while we waited
                return False
            remove_tree(path)
            try:
                uv = self.uv()
                python = os.path.join(path, "bin", "python")
                if uv:
                    self.run([uv, "venv", "--quiet", "--python", self.python, path], log_path)
                    # --compile-bytecode: as pip does; without it every process start
                    # compiles the app's dependencies again where .pyc cannot be written.
                    argv = [uv, "pip", "install", "--compile-bytecode", "--python", python,
                            "-r", requirements_path]
                else:
                    self.run([self.python, "-m", "virtualenv", "--quiet", "--python",
                              self.python, path], log_path)
                    argv = [python, "-m", "pip", "install", "--disable-pip-version-check",
                            "-r", requirements_path]
                self.run(argv + self.pip_args, log_path)
                with open(marker, "wb") as f:
                    f.write(requirements)
            except BaseException:
                remove_tree(path)
                raise
        finally:
            os.close(fd)
        return True

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
