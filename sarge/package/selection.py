"""Which files of a folder source ship: everything, less ``.git`` (the manifest records
the revision instead), what git ignores (``git ls-files``, when the folder is in a git
work tree and git is installed) and what ``.sargeignore`` names (gitignore syntax, with
:mod:`pathspec`, the matcher black and pip's tools use). Nothing is followed: a link is
an entry of its own (the unpacker checks that it stays inside)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess

from ..errors import PackageError

IGNORE_FILE = ".sargeignore"
#: A path component that never ships.
NEVER = ".git"


@dataclasses.dataclass(frozen=True)
class Entry:
    """A path of a source (``/``-separated, relative to its root) and its kind: ``file``,
    ``dir`` or ``symlink``; ``mode``: its permission bits."""

    path: str
    kind: str
    mode: int = 0o644


@dataclasses.dataclass(frozen=True)
class Revision:
    """The git commit a source's folder is at, and whether its shipped files differ from
    it (``dirty``)."""

    commit: str
    dirty: bool

    def to_dict(self) -> dict:
        return {"git": self.commit, "dirty": self.dirty}


def select(root: str) -> tuple:
    """(the :class:`Entry` list that ships from the folder ``root``, sorted by path; its
    :class:`Revision` or None when it is not in a git work tree)."""
    spec = _ignore_spec(root)
    listed = _git_files(root)
    if listed is None:
        entries = list(_walk(root, "", spec))
    else:
        entries = _from_git(root, listed, spec)
    return sorted(entries, key=lambda e: e.path), _revision(root) if listed is not None \
        else None


def _ignore_spec(root):
    path = os.path.join(root, IGNORE_FILE)
    if not os.path.isfile(path):
        return None
    import pathspec

    try:
        with open(path, encoding="utf-8") as f:
            return pathspec.GitIgnoreSpec.from_lines(f.read().splitlines())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackageError(f"cannot read {path}: {exc}; it holds gitignore patterns, one "
                           "a line") from exc


def _ignored(spec, path: str, is_dir: bool) -> bool:
    if NEVER in path.split("/"):
        return True
    return spec is not None and spec.match_file(path + "/" if is_dir else path)


def _entry(root: str, path: str):
    """The :class:`Entry` of ``path`` as it is on disk (not followed), or None when it is
    gone or is neither a file, a folder nor a link."""
    try:
        st = os.lstat(os.path.join(root, path))
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, "symlink", 0o777)
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, "dir", 0o755)
    if stat.S_ISREG(st.st_mode):
        return Entry(path, "file", 0o755 if st.st_mode & 0o100 else 0o644)
    raise PackageError(f"{os.path.join(root, path)} is neither a file, a folder nor a "
                       "link (a FIFO, a socket, a device): remove it or list it in "
                       f"{IGNORE_FILE}")


def _walk(root: str, prefix: str, spec):
    folder = os.path.join(root, prefix) if prefix else root
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise PackageError(f"cannot list {folder}: {exc.strerror}") from exc
    for name in names:
        path = prefix + name
        entry = _entry(root, path)
        if entry is None or _ignored(spec, path, entry.kind == "dir"):
            continue
        yield entry
        if entry.kind == "dir":
            yield from _walk(root, path + "/", spec)


def _from_git(root, listed, spec) -> list:
    """The entries of the paths git lists (tracked, and untracked but not ignored), their
    folders, less what ``spec`` ignores. A submodule's folder ships whole."""
    entries, folders = [], set()
    for path in listed:
        parts = path.split("/")
        if any(_ignored(spec, "/".join(parts[:n]), True) for n in range(1, len(parts))):
            continue
        entry = _entry(root, path)  # gone: deleted, not yet committed
        if entry is None or _ignored(spec, path, entry.kind == "dir"):
            continue
        folders.update("/".join(parts[:n]) for n in range(1, len(parts)))
        if entry.kind == "dir":  # a submodule
            entries.extend(_walk(root, path + "/", spec))
        entries.append(entry)
    entries.extend(Entry(f, "dir", 0o755) for f in folders)
    return list({e.path: e for e in entries}.values())


def _git(root, *args, refusal=None):
    """git's output for ``args`` in ``root``, or None when git is missing or says no
    (``refusal``: a list that gets what it said)."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run([git, "-C", root, *args], capture_output=True, timeout=60,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0 and refusal is not None:
        refusal.append(result.stderr.decode("utf-8", "replace"))
    return result.stdout if result.returncode == 0 else None


def _git_files(root):
    """The paths git would commit in ``root`` (tracked and untracked, not ignored), or
    None when ``root`` is not in a git work tree. :class:`PackageError` when it is one
    (it has a ``.git``) that git cannot read: what git ignores would ship."""
    refusal = []
    inside = _git(root, "rev-parse", "--is-inside-work-tree", refusal=refusal)
    if inside is None and os.path.lexists(os.path.join(root, NEVER)):
        why = ("git is not installed (apt-get install git)" if shutil.which("git") is None
               else " ".join((refusal or ["git refused it"])[0].split())[:300])
        raise PackageError(f"{root} is a git work tree that git cannot read: {why}; "
                           "without git, the files it ignores would ship")
    if inside is None or inside.strip() != b"true":
        return None
    out = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if out is None:
        return None
    return sorted({os.fsdecode(p).rstrip("/") for p in out.split(b"\0") if p})


def _revision(root):
    commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if commit is None:  # a repository with no commit yet
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return Revision(commit.decode().strip(), bool(status and status.strip()))
