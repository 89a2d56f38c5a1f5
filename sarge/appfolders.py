"""An instance's declared folders (``sarge-app.toml``, :mod:`sarge.manifest`): those its
app writes to, made for each instance (``writable``) or kept from one deploy to the next
(``persistent``: links into ``$SARGE_DATA_DIR``), and the static ones nginx serves.

- :func:`check_source` refuses, before anything of the app runs, a source that ships
  something where a declared folder goes that sarge could not use: a file or a link,
  or files in a persistent folder (the link would hide them). A source may ship a
  writable folder (its files are the instance's starting copy: they become the app
  user's) and an empty persistent one (a ``.gitkeep`` in it, say: it is replaced).
- :func:`make` makes them: a writable folder is the app's user's, mode 0700; a
  persistent one is ``$SARGE_DATA_DIR/NAME`` (made if missing, the user's, 0700)
  and the instance's ``NAME`` a relative link to it, root's.
- :func:`check_made` checks, after the build (which could change the code folder),
  that they are still what :func:`make` made.
- :func:`open_static` checks that each static folder is a real folder of the instance,
  and lets nginx's workers read it and nothing else: its files get read permission for
  all users (what nginx serves is public), the folders above it search permission only
  (no listing; the rest of the code keeps no permission for others).
"""

from __future__ import annotations

import os
import stat

from . import ownership
from .errors import BuildError
from .files import remove_tree
from .manifest import FILENAME
from .users import switches

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def check_source(folder: str, manifest) -> None:
    """Refuse what the unpacked source ships where a declared folder goes (see above)."""
    for kind, names in (("writable", manifest.writable), ("persistent", manifest.persistent)):
        for name in names:
            _check_parents(folder, kind, name)
            path = os.path.join(folder, name)
            if not os.path.lexists(path):
                continue
            if os.path.islink(path) or not os.path.isdir(path):
                raise BuildError(f"{FILENAME}: {kind} names {name!r}, which the source ships "
                                 "as a file or a link: ship a folder there, or nothing")
            if kind == "persistent" and not _placeholders_only(path):
                raise BuildError(
                    f"{FILENAME}: persistent names {name!r}, but the source ships files in "
                    f"it, which the link to $SARGE_DATA_DIR/{name} would hide: remove them "
                    "from the source, or declare the folder writable (each instance then "
                    "starts from the source's copy)")


def _check_parents(folder, kind, name) -> None:
    path = folder
    for part in name.split("/")[:-1]:
        path = os.path.join(path, part)
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            raise BuildError(f"{FILENAME}: {kind} names {name!r}, but the source's {part!r} "
                             "on the way is a file or a link, not a folder")


def _placeholders_only(path) -> bool:
    """True when the tree at ``path`` holds nothing but folders and empty files."""
    for root, dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if not stat.S_ISREG(st.st_mode) or st.st_size:
                return False
        if any(os.path.islink(os.path.join(root, d)) for d in dirs):
            return False
    return True


def make(folder: str, manifest, run_as, data_dir: str) -> str:
    """Make the instance's writable and persistent folders (see above), for ``run_as``
    (None: sarge's own user) whose data folder is ``data_dir``; a line saying what."""
    for name in manifest.writable:
        path = os.path.join(folder, name)
        _parents(folder, name, run_as)
        if os.path.isdir(path):  # shipped: root's (unpack made it), no link in it
            ownership.hand_over(path, run_as)
        else:
            os.mkdir(path, 0o700)
            _own(path, run_as)
        os.chmod(path, 0o700)
    for name in manifest.persistent:
        target = _data_folder(data_dir, name, run_as)
        path = os.path.join(folder, name)
        if os.path.lexists(path):  # placeholders only: check_source said so
            remove_tree(path)
        _parents(folder, name, run_as)
        os.symlink(os.path.relpath(target, os.path.dirname(path)), path)
    said = [f"{name} (writable)" for name in manifest.writable]
    said += [f"{name} -> $SARGE_DATA_DIR/{name}" for name in manifest.persistent]
    return ", ".join(said)


def check_made(folder: str, manifest, data_dir: str) -> None:
    """Refuse an instance whose declared folders are no longer what :func:`make` made."""
    for name in manifest.writable:
        path = os.path.join(folder, name)
        if os.path.islink(path) or not os.path.isdir(path):
            raise BuildError(f"the build replaced the writable folder {name} (now a file, "
                             "a link or nothing): leave it a folder")
    for name in manifest.persistent:
        path = os.path.join(folder, name)
        wanted = os.path.relpath(os.path.join(data_dir, name), os.path.dirname(path))
        if not os.path.islink(path) or os.readlink(path) != wanted:
            raise BuildError(f"the build replaced {name}, the link to $SARGE_DATA_DIR/{name}"
                             " (persistent): write into it, do not remove it")


def _own(path, run_as) -> None:
    if switches(run_as) and run_as.uid != 0:
        os.chown(path, run_as.uid, run_as.gid, follow_symlinks=False)


def _parents(folder, name, run_as) -> None:
    """Make the folders on the way to ``name`` that the source does not ship: root's, in
    the user's group (readable, not writable, as the rest of the code)."""
    path = folder
    for part in name.split("/")[:-1]:
        path = os.path.join(path, part)
        if not os.path.lexists(path):
            os.mkdir(path, 0o750 if os.geteuid() == 0 else 0o755)
            if switches(run_as) and run_as.uid != 0:
                os.chown(path, -1, run_as.gid, follow_symlinks=False)
                os.chmod(path, 0o750)


def _data_folder(data_dir, name, run_as) -> str:
    """``data_dir/name``, made if missing (the user's, 0700), through descriptors that
    never follow a link: the user owns ``data_dir`` and what is in it."""
    ownership.give(data_dir, run_as, 0o700)
    fd = os.open(data_dir, _FOLDER)
    try:
        for part in name.split("/"):
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                made = True
            except FileExistsError:
                made = False
            try:
                child = os.open(part, _FOLDER, dir_fd=fd)
            except OSError:
                raise BuildError(f"$SARGE_DATA_DIR/{name} ({data_dir}) is not a folder: "
                                 "move what is there away") from None
            os.close(fd)
            fd = child
            if made and switches(run_as) and run_as.uid != 0:
                os.fchown(fd, run_as.uid, run_as.gid)
    finally:
        os.close(fd)
    return os.path.join(data_dir, name)


def open_static(folder: str, static) -> str:
    """Check that each static folder (``(prefix, name)`` pairs) is a real folder of the
    instance, and, as root, let every user (nginx's workers) read it; a line saying
    how many files each has. Call it once the app's user can no longer change the
    code (after the build)."""
    said = []
    for prefix, name in static:
        path = folder
        for part in name.split("/"):
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                raise BuildError(f"[static] {prefix!r} = {name!r}: the instance has no folder "
                                 f"{name} (after the build, if it has one): make it, or fix "
                                 f"the path in {FILENAME}") from None
            if not stat.S_ISDIR(st.st_mode):
                raise BuildError(f"[static] {prefix!r} = {name!r}: {part} is not a folder "
                                 "(a file or a link): nginx serves real folders of the "
                                 "instance only")
        said.append(f"{prefix} {_open(folder, name) if os.geteuid() == 0 else _count(path)} "
                    "files")
    return ", ".join(said)


def _count(path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


def _open(folder, name) -> int:
    """Search permission for others on the folders down to ``name``, read permission on
    its tree (its folders searchable); only on what root owns (all of it, once the code is
    taken back), never through a link. Returns the number of files."""
    path = folder
    for part in [None, *name.split("/")[:-1]]:
        path = path if part is None else os.path.join(path, part)
        _chmod(path, stat.S_IXOTH)
    count = 0
    for root, dirs, files in os.walk(os.path.join(folder, name)):
        _chmod(root, stat.S_IROTH | stat.S_IXOTH)
        for file in files:
            count += _chmod(os.path.join(root, file), stat.S_IROTH)
    return count


def _chmod(path, bits) -> int:
    """Add ``bits`` to the mode of the folder or regular file at ``path``; 1 if it is one."""
    st = os.lstat(path)
    if st.st_uid != os.geteuid() or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return 0
    if stat.S_IMODE(st.st_mode) & bits != bits:
        os.chmod(path, stat.S_IMODE(st.st_mode) | bits)
    return 1
