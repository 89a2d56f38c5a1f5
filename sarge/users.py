"""Who an app's processes run as, and the folders that user needs.

When the home's supervisord runs as root (started by a boot script), every
instance runs as the user ``etc/sarge.toml`` names: ``[users] apps.APP``, else
``[users] default``. Root itself only when one of those says ``"root"``: with
no user named, nothing runs. nginx's workers run as ``[users] frontend``
(default ``nobody``). The home must then be root's, and no app user may write
to a folder root reads from (it could make itself root). No app user may be
nginx's workers' user, nor the user of another app under another name (the
same uid), nor share a group, primary or supplementary, with either (an app
reads its own code through its group): :func:`check_apart`.

Not running as root, sarge cannot switch users: processes run as whoever runs
supervisord, and a named user other than that one is an error.

What the user owns: ``var/data/APP`` (``$SARGE_DATA_DIR``, created by sarge,
given to the user on first use) and ``var/runtime/ID`` (``$XDG_RUNTIME_DIR``),
both 0700. What it may only read: its instance's code (root's, in the user's
group) and virtualenv. What it cannot reach: every app's configuration
(``etc/apps``, 0700), ``var/run`` (0700: the supervisord socket), other apps'
code and data. What it does not get: root's environment (only an allow-list
of it) and root's terminal (the command has no controlling terminal, so it
cannot type into the operator's; when it cannot be given up, nothing runs).

Giving folders and code to that user is :mod:`sarge.ownership`'s; becoming it,
:mod:`sarge.privileges`'.
"""

from __future__ import annotations

import dataclasses
import functools
import grp
import os
import pwd
import stat

from .errors import SettingsError
from .layout import FOLDERS, LATER

#: The variables of root's environment that a process switched to an app's user keeps.
INHERITED = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "COLORTERM", "COLUMNS",
                       "LINES", "SHELL"})
#: And what an install keeps besides (with the installers' PIP_* and UV_* settings).
BUILD_INHERITED = frozenset({
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY",
    "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"})


@dataclasses.dataclass(frozen=True)
class RunAs:
    """A user to switch to: name, ids, and the home folder ``$HOME`` points at."""

    name: str
    uid: int
    gid: int
    home: str

    @functools.cached_property
    def groups(self) -> list:
        return os.getgrouplist(self.name, self.gid)

    def env(self, env: dict) -> dict:
        """``env`` with the user's HOME, USER and LOGNAME."""
        return {**env, "HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    @staticmethod
    def inherit(env: dict, build: bool = False) -> dict:
        """What of root's environment a switched process keeps (as sudo's env_reset):
        the path, the locale, the time zone and the terminal, never root's tokens. An
        install (``build``) also keeps how this machine reaches an index: certificates,
        proxies, and the installers' own ``PIP_*`` and ``UV_*`` settings."""
        return {k: v for k, v in env.items()
                if k in INHERITED or k.startswith("LC_")
                or build and (k in BUILD_INHERITED or k.startswith(("PIP_", "UV_")))}

    def popen_kwargs(self) -> dict:
        """subprocess arguments that run a child as this user, in a session of its own (no
        controlling terminal: it cannot type into the operator's)."""
        if not switches(self):
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": self.groups,
                "start_new_session": True}


def lookup(user: str, source: str = "etc/sarge.toml") -> RunAs:
    """The :class:`RunAs` of a user name or number, or :class:`SettingsError`."""
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError, OverflowError):
        raise SettingsError(f"{source}: there is no user {user!r} on this machine") from None
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")


#: The folders root reads from or runs, or that hold what an app's user owns: the user
#: must not be able to write any of them; nor, in the second list, any file in them
#: (from the home's one table of folders, :data:`sarge.layout.FOLDERS`).
GUARDED = tuple(f.name for f in FOLDERS + LATER if f.guarded)
GUARDED_FILES = tuple(f.name for f in FOLDERS + LATER if f.guarded_files)


def _can_write(st, run_as: RunAs) -> bool:
    return (st.st_uid == run_as.uid
            or bool(st.st_mode & stat.S_IWGRP) and st.st_gid in run_as.groups
            or bool(st.st_mode & stat.S_IWOTH) and not stat.S_ISLNK(st.st_mode))


def check_home(home_path: str, run_as: RunAs) -> None:
    """Refuse to run ``run_as`` from a root supervisord when it could change what root
    runs: when it can write to the home, a folder above it (``/srv``: it could move the
    home away and put its own in its place), a folder root reads from or a file in one
    (:data:`GUARDED`, :data:`GUARDED_FILES`)."""
    if run_as.uid == 0:
        return

    def refuse(path):
        raise SettingsError(
            f"{run_as.name} can change {path}, which a root supervisord reads or runs: any "
            f"of its apps could then become root. Give the home to root (chown -R root: "
            f"{home_path}; chmod -R go-w {home_path}), or run bin/supervisord as "
            f"{run_as.name} instead")

    home_path = os.path.realpath(home_path)  # the folders above are the real ones
    _check_above(home_path, run_as)
    for name in GUARDED:
        path = os.path.join(home_path, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if name and stat.S_ISLNK(st.st_mode):  # var/data on another disk, say:
            real = os.path.realpath(path)        # the folder it leads to, and above it
            _check_above(real, run_as)
            st = os.stat(real)
        if _can_write(st, run_as):
            refuse(path)
        if name in GUARDED_FILES:
            with os.scandir(path) as entries:
                for entry in entries:
                    if _can_write(entry.stat(follow_symlinks=False), run_as):
                        refuse(entry.path)


def _check_above(path: str, run_as: RunAs) -> None:
    """Refuse a folder whose parents another user than root could change."""
    parent = os.path.dirname(path)
    while True:
        st = os.stat(parent)
        # a sticky folder (/tmp) lets no one move what another user put in it
        if st.st_uid != 0 or _can_write(st, run_as) and not st.st_mode & stat.S_ISVTX:
            raise SettingsError(
                f"{path} is inside {parent}, which uid {st.st_uid} owns or other users "
                f"can change: they could move it away and put their own in its place, "
                f"which a root supervisord would use. Put it in a folder only root can "
                f"change (/srv/NAME), or run bin/supervisord as {run_as.name}")
        if parent == os.path.dirname(parent):
            return
        parent = os.path.dirname(parent)


#: What nginx's workers are called in messages, and in :func:`others`.
FRONTEND = "nginx's workers"


def others(settings, leaving_out: str) -> list:
    """The users ``settings`` name, as (what runs as it, name) pairs, but ``leaving_out``
    (an app's name, or :data:`FRONTEND`): each app's own, ``[users] default`` (every app
    without one of its own), and, for an app, nginx's workers' (by default nobody)."""
    pairs = [(f"the app {app}", name) for app, name in settings.app_users if app != leaving_out]
    pairs.append(("[users] default", settings.user))
    if leaving_out != FRONTEND:
        pairs.append((FRONTEND, settings.frontend_user or "nobody"))
    return pairs


def check_apart(user: RunAs, role: str, named, settings_path: str) -> None:
    """Refuse ``user``, who runs ``role`` ("the app web", :data:`FRONTEND`), when it is
    one of the ``named`` users (:func:`others`), by name or by uid, or shares a group with
    one, primary or supplementary: each could then signal, trace or read the other (an
    app, nginx's workers: the front-end of every home on this machine), or read the
    other's code and data, which sarge shares with an app's user through its group.

    Apps may share a user by name (``[users] default`` serves every app without one of
    its own); nginx's workers never. Root, who can do everything anyway, and users that
    do not exist (left for their own apps to report) are not compared."""
    if user.uid == 0:
        return
    for other_role, name in named:
        if not name or name == "root":
            continue
        try:
            other = lookup(name, settings_path)
        except SettingsError:
            continue
        frontend = FRONTEND in (role, other_role)
        if other.uid == 0 or other.name == user.name and not frontend:
            continue
        problem, same_user = _together(user, other)
        if problem is None:
            continue
        if not same_user:
            harm = "each could read the other's code and data through it"
        elif frontend:
            harm = "the app could kill or trace the front-end of every home on this machine"
        else:
            harm = "each could signal, trace and read the other"
        fix = "give each app a user of its own (adduser --system --group NAME)"
        fix += (", and nginx's workers one no app has ([users] frontend, by default nobody)"
                if frontend else ", in no other's group")
        raise SettingsError(f"{settings_path}: {user.name} ({role}) and {other.name} "
                            f"({other_role}) {problem}: {harm}; {fix}")


def _together(user: RunAs, other: RunAs) -> tuple:
    """(how ``user`` and ``other`` are not apart, whether they are one user), or (None,
    False) when they are apart."""
    if user.name == other.name:
        return "are the same user", True
    if user.uid == other.uid:
        return f"are the same user, uid {user.uid}, under two names", True
    shared = set(user.groups) & set(other.groups)
    if not shared:
        return None, False
    # name the group one of them has as its primary, if any: the one it reads code through
    gid = next((g for g in (user.gid, other.gid) if g in shared), min(shared))
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    if user.gid == other.gid:
        return f"share their primary group {group}", False
    return f"share the group {group}", False


def resolve(named: str, what: str, home_path: str, settings_path: str,
            euid: int | None = None, apart_from=()) -> RunAs | None:
    """Who ``what`` (an app, or nginx's workers) runs as, given the user ``named`` in the
    settings ("" for none); None when there is nothing to switch (not running as root).

    As root, the user must be named (root itself only as "root"), the home must be
    root's, the user must not be able to write where root reads (:func:`check_home`),
    and it must be apart from the users the settings name (``apart_from``: pairs from
    :func:`others`; :func:`check_apart`). ``euid`` is the user supervisord (and sarge) run as;
    default: this process's.
    """
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        if named and lookup(named, settings_path).uid != euid:
            try:
                me = pwd.getpwuid(euid).pw_name
            except KeyError:
                me = str(euid)
            raise SettingsError(
                f"{settings_path} says {what} runs as {named}, but sarge and supervisord run "
                f"as {me}, not root, and cannot switch users: start bin/supervisord as root, "
                f"or remove that setting")
        return None
    if not named:
        raise SettingsError(
            f"{what} would run as root: supervisord runs as root and {settings_path} names "
            f"no user. Set [users] default = \"NAME\" there (a user of its own, without a "
            f"login), or \"root\" if you mean it")
    run_as = lookup(named, settings_path)
    if run_as.uid != 0:
        owner = os.stat(home_path).st_uid
        if owner != 0:
            raise SettingsError(
                f"supervisord runs as root on {home_path}, which uid {owner} owns and could "
                f"change what root runs: give the home to root (chown -R root: {home_path}), "
                f"or run bin/supervisord as its owner")
        check_home(home_path, run_as)
        check_apart(run_as, what, apart_from, settings_path)
    return run_as


def switches(run_as: RunAs | None) -> bool:
    """True when running as ``run_as`` means leaving the user this process is."""
    return run_as is not None and run_as.uid != os.geteuid()
