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
import os
import select
import signal

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


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
    must exec or exit); relay between it and this process's terminal until it ends;
    return its exit status (128 + N for a signal, as a shell says).

    Only the standard streams that are a terminal go through the new one: a stream
    redirected to a file or a pipe reaches the command unchanged.
    """
    import pty

    ttys = {fd for fd in (0, 1, 2) if os.isatty(fd)}
    kept = {fd: os.dup(fd) for fd in (0, 1, 2) if fd not in ttys}
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
    return _relay(pid, master, ttys)


def _relay(pid: int, master: int, ttys: set) -> int:
    import termios
    import tty

    ours = min(ttys)
    saved = None
    if 0 in ttys:
        saved = termios.tcgetattr(0)
        tty.setraw(0)  # keystrokes, ^C and ^D included, go to the command's terminal
    _copy_size(ours, master)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGWINCH, *_FORWARDED)}
    signal.signal(signal.SIGWINCH, lambda *_: _copy_size(ours, master))
    for sig in _FORWARDED:  # passed on; the relay goes on until the command ends
        signal.signal(sig, lambda sig, _: _kill(pid, sig))
    os.set_blocking(master, False)
    try:
        status = _pump(pid, master, read_input=0 in ttys,
                       write_output=1 if 1 in ttys else 2 if 2 in ttys else None)
    finally:
        if saved is not None:
            try:
                termios.tcsetattr(0, termios.TCSAFLUSH, saved)
            except termios.error:
                pass  # the terminal is gone (hung up)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(master)  # what the command left behind on its terminal gets SIGHUP
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _kill(pid, sig) -> None:
    try:
        os.killpg(pid, sig)  # the command's session and process group have its pid
    except OSError:
        pass


def _pump(pid: int, master: int, read_input: bool, write_output: int) -> int:
    """Copy our terminal's input to the command's terminal and its output to ours until
    the command has ended and its last output is copied; return its wait status.
    Nothing blocks: a paste that the command does not read yet waits in ``pending``
    while its output keeps flowing."""
    pending = b""
    status = None
    while True:
        inputs = [master] + ([0] if read_input else [])
        outputs = [master] if pending else []
        try:
            ready, writable, _ = select.select(inputs, outputs, [],
                                               0.05 if status is None else 0)
        except InterruptedError:  # pragma: no cover - a signal; select is retried
            continue
        if master in writable:
            try:
                pending = pending[os.write(master, pending):]
            except BlockingIOError:
                pass
            except OSError:
                pending = b""
        if 0 in ready:
            try:
                data = os.read(0, 65536)
            except OSError:  # EIO: our terminal hung up
                data = b""
            if data:
                pending += data
            else:
                read_input = False  # our terminal is gone; the command keeps running
        got = False
        if master in ready:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                data = None
            except OSError as exc:  # EIO: no process holds the command's terminal
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if data:
                got = True
                if write_output is not None:  # else only the echo of what was typed
                    _write_all(write_output, data)
            elif data == b"" and status is None:
                status = os.waitpid(pid, 0)[1]
                return status
        if status is None:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                continue  # copy what it wrote before it ended, then stop
        elif not got:
            return status


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:  # pragma: no cover
            select.select([], [fd], [])
        except OSError:
            return  # our reader is gone; the command's output has nowhere to go
