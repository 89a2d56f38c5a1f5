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
"""

from __future__ import annotations

import dataclasses
import functools
import os
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
    import pwd

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
    import grp

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


def give(path: str, run_as: RunAs | None, mode: int, gid: int | None = None) -> None:
    """Make the folder ``path`` (sarge's own, created by sarge) the user's, with ``mode``
    (and in the group ``gid``, else the user's own).

    Only the folder itself changes owner: a folder already owned by another
    user (named before the setting changed) is refused, not taken over
    recursively, so sarge never follows what that user left in it.
    """
    os.makedirs(path, mode, exist_ok=True)
    if run_as is None or run_as.uid == 0:
        if gid is not None:  # root's, in a folder only root can change: no link to fear
            os.chown(path, -1, gid)
            os.chmod(path, mode)
        return
    # Through a descriptor opened without following links: the user may own the
    # folder already, and swap it for a link between a look and a change.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise SettingsError(f"{path} is not a folder; remove it") from None
    try:
        st = os.fstat(fd)
        if st.st_uid not in (run_as.uid, 0, os.geteuid()):
            raise SettingsError(
                f"{path} belongs to uid {st.st_uid}, not to {run_as.name}, who now runs its "
                f"app; give it to {run_as.name} with: chown -R {run_as.name}: {path}")
        gid = run_as.gid if gid is None else gid
        if st.st_uid != run_as.uid or st.st_gid != gid:
            os.fchown(fd, run_as.uid, gid)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def share_code(folder: str, run_as: RunAs | None, unless_shared: bool = False) -> None:
    """Let the user read (not change) an instance's code: each file and folder stays
    root's, joins the user's group, and gets group read (and search, and execute
    where its owner has it); others lose access. Run on a tree only root can write.

    ``unless_shared``: do nothing when the folder is already in the user's group (a
    start: the app's user changed since its deploy when it is not)."""
    if run_as is None or run_as.uid == 0:
        return
    if unless_shared and os.stat(folder).st_gid == run_as.gid:
        return
    for root, dirs, files in os.walk(folder):
        st = os.lstat(root)
        if _can_write(st, run_as) or st.st_uid not in (0, os.geteuid()):
            # another user could swap an entry for a link while root changes its mode
            raise SettingsError(f"{root} can be changed by uid {st.st_uid} or others: sarge "
                                f"will not share it with {run_as.name}; make it root's, "
                                "writable by root only")
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


def detach_terminal(ioctl=None) -> None:
    """Give up this process's controlling terminal, if any: a process that then runs as
    another user cannot push keystrokes into it (TIOCSTI) nor open ``/dev/tty``. Its
    standard streams still work, and Ctrl-C still reaches its process group.

    :class:`SettingsError` when the terminal cannot be given up: the caller must not
    switch users then (a check that fails must refuse, not let the command through).
    ``ioctl`` is :func:`fcntl.ioctl` (tests pass one that fails)."""
    import fcntl
    import termios

    ioctl = ioctl or fcntl.ioctl
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return  # none
    # As a session's leader (`setsid sarge ...`, a pty's first process), giving it up
    # also sends SIGHUP to this process's group: ignored for that moment.
    import signal

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        ioctl(fd, termios.TIOCNOTTY)
    except OSError as exc:
        raise SettingsError(
            f"cannot give up root's terminal before switching users ({exc.strerror}): the "
            "command was not run, since it could have typed into that terminal; run sarge "
            "without one (`setsid -w sarge ...`)") from exc
    finally:
        os.close(fd)
        signal.signal(signal.SIGHUP, previous)


def switches(run_as: RunAs | None) -> bool:
    """True when running as ``run_as`` means leaving the user this process is."""
    return run_as is not None and run_as.uid != os.geteuid()


def become(run_as: RunAs | None, keep_terminal: bool = False, *, ioctl=None) -> None:
    """Switch this process to the user for good: its files but the standard streams
    closed, its controlling terminal given up (unless ``keep_terminal``: one of the
    user's own), then groups, group, user. :class:`SettingsError`, still as this user,
    when the terminal cannot be given up (``ioctl``: see :func:`detach_terminal`)."""
    if not switches(run_as):
        return
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # none of root's files go along
    if not keep_terminal:
        detach_terminal(ioctl)
    if run_as.name == str(run_as.uid):  # a number with no name: no groups to look up
        os.setgroups([run_as.gid])
    else:
        os.initgroups(run_as.name, run_as.gid)
    os.setgid(run_as.gid)
    os.setuid(run_as.uid)


def can_execute(path: str, run_as: RunAs) -> bool:
    """True when ``run_as`` may run the program at ``path``: it can search every folder on
    the way (links followed, as exec does) and execute the file. (From the modes alone:
    no process is started.)"""
    real = os.path.realpath(path)
    folders = []
    parent = os.path.dirname(real)
    while True:
        folders.append(parent)
        if parent == os.path.dirname(parent):
            break
        parent = os.path.dirname(parent)
    try:
        return (all(_may(os.stat(f), run_as, stat.S_IXUSR) for f in folders)
                and _may(os.stat(real), run_as, stat.S_IXUSR))
    except OSError:
        return False


def _may(st, run_as: RunAs, user_bit: int) -> bool:
    """Whether ``run_as`` has the permission ``user_bit`` (as S_IXUSR) on a file: through
    its owner's bits, its group's, or everyone's, as the kernel decides."""
    if run_as.uid == 0:
        return True
    if st.st_uid == run_as.uid:
        return bool(st.st_mode & user_bit)
    if st.st_gid in run_as.groups:
        return bool(st.st_mode & (user_bit >> 3))
    return bool(st.st_mode & (user_bit >> 6))


def hand_over(folder: str, run_as: RunAs | None) -> None:
    """Give ``run_as`` a tree root has just made in a folder only root can write (an
    empty virtualenv, for the user to install into): no other user could have put a
    link in it, so a plain walk is safe."""
    if not switches(run_as) or run_as.uid == 0:
        return
    for root, dirs, files in os.walk(folder):
        os.chown(root, run_as.uid, run_as.gid, follow_symlinks=False)
        for name in dirs + files:
            os.chown(os.path.join(root, name), run_as.uid, run_as.gid, follow_symlinks=False)


def reclaim(folder: str, run_as: RunAs | None) -> None:
    """Take back for root a tree that ``run_as`` wrote (a virtualenv it installed into),
    leaving it readable, not writable, by the user: every entry becomes root's, in the
    user's group, without write bits for group and others, nor setuid/setgid/sticky.

    The walk goes through descriptors and never follows a link: each folder is opened
    (``O_NOFOLLOW``) and taken before its entries are looked at, so the user, who may
    still run a process, can no longer swap an entry for a link to a file elsewhere.
    Anything that is not a regular file, folder or link is refused.
    """
    if not switches(run_as) or run_as.uid == 0:
        return
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    stack = [(top, folder)]
    try:
        _take(top, run_as, folder)
        while stack:
            fd, path = stack.pop()
            try:
                for entry in os.scandir(fd):
                    where = os.path.join(path, entry.name)
                    child = _reclaim_entry(fd, entry.name, run_as, where)
                    if child is not None:
                        stack.append((child, where))
            finally:
                os.close(fd)
    except BaseException:
        for fd, _ in stack:
            os.close(fd)
        raise


def _reclaim_entry(parent: int, name: str, run_as: RunAs, where: str):
    """Take one entry of the folder ``parent``; return a descriptor of it when it is a
    folder to walk next."""
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        os.chown(name, 0, run_as.gid, dir_fd=parent, follow_symlinks=False)
        return None
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
    else:
        raise SettingsError(f"{where} is a device, FIFO or socket, which an installed "
                            "environment has no use for; sarge refuses it")
    try:
        _take(fd, run_as, where)
    except BaseException:
        os.close(fd)
        raise
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        return fd
    os.close(fd)
    return None


def _take(fd: int, run_as: RunAs, where: str) -> None:
    """Make the opened file root's, in the user's group, readable by the group alone."""
    st = os.fstat(fd)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        # swapped between the look and the open
        raise SettingsError(f"{where} changed while sarge took it back; sarge refuses it")
    os.fchown(fd, 0, run_as.gid)
    mode = stat.S_IMODE(st.st_mode)
    mode |= stat.S_IRUSR | stat.S_IRGRP | (stat.S_IXGRP if mode & stat.S_IXUSR else 0)
    mode &= ~(stat.S_IWGRP | stat.S_IRWXO | stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)
    os.fchmod(fd, mode)
