"""A terminal of its own for a command that root runs as an app's user.

``sarge HOME run`` typed by root runs the command as the app's user. Were it
handed root's terminal, that user's processes could keep it open after the
command ends and read what root types next, or push keystrokes into root's
shell. Instead the command gets a new pseudo-terminal in place of those of its
standard streams that are root's terminal (a redirected stream is handed over
as it is), and root's sarge copies between the two terminals until the command
exits, as ``su --pty`` and sudo's ``use_pty`` do: whatever the command leaves
behind holds a terminal that leads nowhere.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import select
import signal
import termios
import time
import tty

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def needs_pty() -> bool:
    """True when one of the standard streams is a terminal."""
    return any(os.isatty(fd) for fd in (0, 1, 2))


def _copy_size(source: int, target: int) -> None:
    try:
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def run(child) -> int:
    """Fork; in the child, on a new terminal in a new session, call ``child()`` (which
    must exec or exit); relay between it and this process's terminal until it ends;
    return its exit status (128 + N for a signal, as a shell says).

    Only the standard streams that are a terminal go through the new one: a stream
    redirected to a file or a pipe reaches the command unchanged.
    """
    ttys = {fd for fd in (0, 1, 2) if os.isatty(fd)}
    kept = {}
    for fd in {0, 1, 2} - ttys:
        try:
            kept[fd] = os.dup(fd)
        except OSError:  # closed: the command gets its new terminal there instead
            pass
    # The operator's terminal, which the relay reads keystrokes from and writes the
    # command's terminal to (also when the command's own stdin or stdout is redirected:
    # a password prompt reads /dev/tty).
    term = os.open(os.ttyname(min(ttys)), os.O_RDWR | os.O_NOCTTY)
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - replaced by exec
        try:
            for fd, copy in kept.items():  # the redirected streams, as they were
                os.dup2(copy, fd)
            child()
        finally:
            os._exit(127)
    for copy in kept.values():
        os.close(copy)
    try:
        return _relay(pid, master, term)
    finally:
        os.close(term)


def _relay(pid: int, master: int, term: int) -> int:
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGWINCH, *_FORWARDED)}
    saved = None
    status = None
    try:
        for sig in _FORWARDED:  # passed on; the relay goes on until the command ends
            signal.signal(sig, lambda sig, _: _kill(pid, sig))
        signal.signal(signal.SIGWINCH, lambda *_: _copy_size(term, master))
        _copy_size(term, master)
        # Keystrokes are ours to pass on only in the foreground (`sarge run ... &` would
        # be stopped for touching the terminal): in the background, output only.
        foreground = _foreground(term)
        if foreground:
            saved = termios.tcgetattr(term)
            tty.setraw(term)  # keystrokes, ^C and ^D included, go to the command's terminal
        os.set_blocking(master, False)
        os.set_blocking(term, False)
        status = _pump(pid, master, term, read_keys=foreground)
    finally:
        if saved is not None:
            try:
                termios.tcsetattr(term, termios.TCSAFLUSH, saved)
            except termios.error:
                pass  # the terminal is gone (hung up)
        if status is None:
            # The command let go of its terminal but runs on (`nohup`): wait for it with
            # the operator's terminal as it was, ^C reaching it through our handler.
            status = os.waitpid(pid, 0)[1]
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(master)  # what the command left behind on its terminal gets SIGHUP
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _foreground(term: int) -> bool:
    try:
        return os.tcgetpgrp(term) == os.getpgrp()
    except OSError:
        return False


def _kill(pid, sig) -> None:
    try:
        os.killpg(pid, sig)  # the command's session and process group have its pid
    except OSError:
        pass


#: Once the command has ended, what is still on its terminal is copied for at most this
#: long and this much: a process it left behind must not keep the relay (and the
#: operator's keystrokes) going.
DRAIN_SECONDS = 0.2
DRAIN_BYTES = 1 << 20


def _pump(pid: int, master: int, term: int, read_keys: bool = True):
    """Copy the operator's keystrokes (``read_keys``) to the command's terminal and its
    output back until the command has ended; return its wait status, or None when it
    let go of its terminal but still runs. Nothing blocks: a paste that the command
    does not read yet waits in ``pending`` while its output keeps flowing."""
    pending = b""
    reading = read_keys
    while True:
        outputs = [master] if pending else []
        try:
            ready, writable, _ = select.select([master] + ([term] if reading else []),
                                               outputs, [], 0.05)
        except InterruptedError:  # pragma: no cover - a signal; select is retried
            continue
        if master in writable:
            try:
                pending = pending[os.write(master, pending):]
            except BlockingIOError:
                pass
            except OSError:
                pending = b""
        if term in ready:
            try:
                data = os.read(term, 65536)
            except BlockingIOError:  # another reader of the terminal took it first
                data = None
            except OSError:  # EIO: the operator's terminal hung up
                data = b""
            if data:
                pending += data
            elif data is not None:
                reading = False  # the command keeps running without it
        if master in ready and not _copy(master, term):
            done, status = os.waitpid(pid, os.WNOHANG)  # nothing holds its terminal:
            return status if done else None             # ended, or left it
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _drain(master, term)
            return status


def _copy(master: int, term: int, limit: int = 65536) -> int:
    """Copy what is ready on the command's terminal to ours; bytes copied (0 at its end)."""
    try:
        data = os.read(master, limit)
    except BlockingIOError:
        return -1
    except OSError as exc:  # EIO: no process holds the command's terminal any more
        if exc.errno != errno.EIO:
            raise
        return 0
    _write_all(term, data)
    return len(data)


def _drain(master: int, term: int) -> None:
    """The command has ended: copy its last output, within bounds, and no keystroke more."""
    deadline, left = time.monotonic() + DRAIN_SECONDS, DRAIN_BYTES
    while left > 0 and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0)
        if not ready:
            return
        copied = _copy(master, term, min(left, 65536))
        if copied <= 0:
            return
        left -= copied


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:  # pragma: no cover
            select.select([], [fd], [])
        except OSError:
            return  # our terminal is gone; the command's output has nowhere to go
