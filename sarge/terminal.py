"""A terminal of its own for a command that root runs as an app's user.

``sarge HOME run`` typed by root runs the command as the app's user. Were it
handed root's terminal, that user's processes could keep it open after the
command ends and read what root types next, or push keystrokes into root's
shell. Instead the command gets a new pseudo-terminal, and root's sarge
copies between the two until the command exits (as ``su --pty`` and sudo's
``use_pty`` do): when it ends, whatever it left behind holds a terminal that
leads nowhere.
"""

from __future__ import annotations

import os
import select
import signal
import sys


def needs_pty() -> bool:
    """True when one of the standard streams is a terminal."""
    return any(os.isatty(fd) for fd in (0, 1, 2))


def _copy_size(source: int, target: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def run(child) -> int:
    """Fork; in the child, on a new terminal in a new session, call ``child()`` (which
    must exec or exit); copy between it and this process's standard streams until it
    ends; return its exit status (128 + N for a signal, as a shell says)."""
    import pty
    import termios
    import tty

    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - replaced by exec
        try:
            child()
        finally:
            os._exit(127)
    ours = next((fd for fd in (0, 1, 2) if os.isatty(fd)), None)
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    if ours is not None:
        _copy_size(ours, master)
        signal.signal(signal.SIGWINCH, lambda *_: _copy_size(ours, master))
    try:
        status = _pump(master, pid)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSAFLUSH, saved)
        signal.signal(signal.SIGWINCH, signal.SIG_DFL)
        os.close(master)  # what the command left behind on its terminal gets SIGHUP
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _pump(master: int, pid: int) -> int:
    """Copy stdin to the terminal and the terminal to stdout until the command ends;
    return its wait status. (A process it left running does not hold this up.)"""
    inputs = [master, 0]
    status = None
    while True:
        try:
            ready, _, _ = select.select(inputs, [], [], 0.1 if status is None else 0)
        except InterruptedError:  # pragma: no cover - a resize; select is retried
            continue
        if status is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            status = status if done else None
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: nothing is left on its terminal
                data = b""
            if not data:
                return status if status is not None else os.waitpid(pid, 0)[1]
            _write_all(1, data)
        elif status is not None:
            return status  # ended, and its last output is copied
        if 0 in ready:
            data = os.read(0, 65536)
            if data:
                _write_all(master, data)
            else:  # our input ended: tell the command (end of file on its terminal)
                inputs.remove(0)
                _write_all(master, b"\x04")


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:  # pragma: no cover
            select.select([], [fd], [])
        except OSError:
            if fd == 1:
                sys.exit(1)  # our reader is gone
            return
