"""Dropping root for good: a process becomes an app's user (groups, group, user), with
none of root's files and without root's terminal."""

from __future__ import annotations

import fcntl
import os
import signal
import termios

from .errors import SettingsError
from .users import RunAs, switches


def detach_terminal(ioctl=None) -> None:
    """Give up this process's controlling terminal, if any: a process that then runs as
    another user cannot push keystrokes into it (TIOCSTI) nor open ``/dev/tty``. Its
    standard streams still work, and Ctrl-C still reaches its process group.

    :class:`SettingsError` when the terminal cannot be given up: the caller must not
    switch users then (a check that fails must refuse, not let the command through).
    ``ioctl`` is :func:`fcntl.ioctl` (tests pass one that fails)."""
    ioctl = ioctl or fcntl.ioctl
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return  # none
    # As a session's leader (`setsid sarge ...`, a pty's first process), giving it up
    # also sends SIGHUP to this process's group: ignored for that moment.
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
