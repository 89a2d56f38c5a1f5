"""Who an app's processes run as, and the folders that user needs.

When the home's supervisord runs as root (started by a boot script), every
instance runs as the user ``etc/sarge.toml`` names: ``[users] apps.APP``, else
``[users] default``, else the owner of the home folder. Root itself only when
one of those says ``"root"``: a root-owned home with no user named runs
nothing. nginx's workers run as ``[users] frontend``, resolved the same way.

Not running as root, sarge cannot switch users: processes run as whoever runs
supervisord, and a named user other than that one is an error.

What the user owns: ``var/data/APP`` (``$SARGE_DATA_DIR``, created by sarge,
given to the user on first use) and ``var/runtime/ID`` (``$XDG_RUNTIME_DIR``).
What it may only read: its instance's code (root's, in the user's group) and
virtualenv. What it cannot reach: every app's configuration (``etc/apps``,
0700), ``var/run`` (0700: the supervisord socket), other apps' data.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from .errors import SettingsError


@dataclasses.dataclass(frozen=True)
class RunAs:
    """A user to switch to: name, ids, and the home folder ``$HOME`` points at."""

    name: str
    uid: int
    gid: int
    home: str

    @property
    def groups(self) -> list:
        return os.getgrouplist(self.name, self.gid)

    def env(self, env: dict) -> dict:
        """``env`` with the user's HOME, USER and LOGNAME."""
        return {**env, "HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    def popen_kwargs(self) -> dict:
        """subprocess arguments that run a child as this user."""
        if self.uid == os.geteuid():
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": self.groups}


def lookup(user: str, source: str = "etc/sarge.toml") -> RunAs:
    """The :class:`RunAs` of a user name or number, or :class:`SettingsError`."""
    import pwd

    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError, OverflowError):
        raise SettingsError(f"{source}: there is no user {user!r} on this machine") from None
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")


def _owner(path) -> RunAs | None:
    import pwd

    uid = os.stat(path).st_uid
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return RunAs(str(uid), uid, os.stat(path).st_gid, "/")
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")


def resolve(named: str, what: str, home_path: str, settings_path: str,
            euid: int | None = None) -> RunAs | None:
    """Who ``what`` (an app, or nginx's workers) runs as, given the user ``named`` in the
    settings ("" for none); None when there is nothing to switch (not running as root).

    ``euid`` is the user supervisord (and sarge) run as; default: this process's.
    """
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        if named and lookup(named, settings_path).uid != euid:
            import pwd

            try:
                me = pwd.getpwuid(euid).pw_name
            except KeyError:
                me = str(euid)
            raise SettingsError(
                f"{settings_path} says {what} runs as {named}, but sarge and supervisord run "
                f"as {me}, not root, and cannot switch users: start bin/supervisord as root, "
                f"or remove that setting")
        return None
    if named:
        return lookup(named, settings_path)
    owner = _owner(home_path)
    if owner.uid == 0:
        raise SettingsError(
            f"{what} would run as root: supervisord runs as root, {home_path} belongs to "
            f"root and {settings_path} names no user. Set [users] default = \"NAME\" there "
            f"(a user of its own, without a login), or \"root\" if you mean it")
    return owner


def give(path: str, run_as: RunAs | None, mode: int) -> None:
    """Make the folder ``path`` (sarge's own, created by sarge) the user's, with ``mode``.

    Only the folder itself changes owner: a folder already owned by another
    user (named before the setting changed) is refused, not taken over
    recursively, so sarge never follows what that user left in it.
    """
    os.makedirs(path, mode, exist_ok=True)
    if run_as is None or run_as.uid == 0:
        return
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise SettingsError(f"{path} is not a folder; remove it")
    if st.st_uid not in (run_as.uid, 0, os.geteuid()):
        raise SettingsError(
            f"{path} belongs to uid {st.st_uid}, not to {run_as.name}, who now runs its "
            f"app; give it to {run_as.name} with: chown -R {run_as.name}: {path}")
    if st.st_uid != run_as.uid or st.st_gid != run_as.gid:
        os.lchown(path, run_as.uid, run_as.gid)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def share_code(folder: str, run_as: RunAs | None) -> None:
    """Let the user read (not change) an instance's code: each file and folder stays
    root's, joins the user's group, and gets group read (and search, and execute
    where its owner has it); others lose access. Run on a tree sarge just
    wrote, before any of the app's processes exist."""
    if run_as is None or run_as.uid == 0:
        return
    for root, dirs, files in os.walk(folder):
        for name in [None, *dirs, *files]:
            path = root if name is None else os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                os.lchown(path, -1, run_as.gid)
                continue
            mode = stat.S_IMODE(st.st_mode)
            mode |= stat.S_IRGRP | (stat.S_IXGRP if mode & stat.S_IXUSR else 0)
            mode &= ~(stat.S_IWGRP | stat.S_IRWXO | stat.S_ISUID | stat.S_ISGID)
            os.lchown(path, -1, run_as.gid)
            os.chmod(path, mode)


def become(run_as: RunAs | None) -> None:
    """Switch this process to the user for good (groups, then group, then user)."""
    if run_as is None or run_as.uid == os.geteuid():
        return
    if run_as.name == str(run_as.uid):  # a number with no name: no groups to look up
        os.setgroups([run_as.gid])
    else:
        os.initgroups(run_as.name, run_as.gid)
    os.setgid(run_as.gid)
    os.setuid(run_as.uid)
