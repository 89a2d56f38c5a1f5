"""Reading an instance's log file: its last lines, and following it as it grows.

What an app printed is shown with its control characters as ``?``: it reaches an
operator's terminal (``sarge logs``, the end of a log in an error message), which
an escape sequence could otherwise drive.

The log is read from disk, so it works whether or not supervisord runs, and
following survives supervisord's size-based rotation (the file is renamed and
a new one started) and truncation.
"""

from __future__ import annotations

import os
import re
import time

_BLOCK = 8192

# Control characters but tab and newline: an app's output must not drive the terminal
# of whoever reads it (escape sequences, carriage returns that hide a line).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters (tab and newline excepted) shown as ``?``."""
    return _CONTROL.sub("?", text)


def tail(path: str, lines: int) -> list:
    """The last ``lines`` lines of the file at ``path`` (text, without newlines)."""
    if lines <= 0:
        return []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= lines:
            start = max(0, end - _BLOCK)
            f.seek(start)
            data = f.read(end - start) + data
            end = start
    text = data.decode("utf-8", "replace")
    return [printable(line) for line in text.splitlines()[-lines:]]


def follow(path: str, poll: float = 0.25, sleep=time.sleep, should_stop=lambda: False):
    """Yield text appended to ``path`` from now on, until ``should_stop()`` is true.

    When the file is replaced (rotation) or shrinks (truncation), reading
    starts again at the beginning of the new file; so does a file that did
    not exist yet.
    """
    try:
        st = os.stat(path)
        inode, position = st.st_ino, st.st_size
    except FileNotFoundError:
        inode, position = None, 0
    f = None
    try:
        while not should_stop():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and (f is None or st.st_ino != inode or st.st_size < position):
                if f is not None:
                    rest = f.read()  # what the old file got before it was rotated
                    if rest:
                        yield printable(rest.decode("utf-8", "replace"))
                    f.close()
                    position = 0
                elif st.st_ino != inode or st.st_size < position:
                    position = 0
                f = open(path, "rb")
                inode = st.st_ino
                f.seek(position)
            if f is not None:
                chunk = f.read()
                if chunk:
                    position += len(chunk)
                    yield printable(chunk.decode("utf-8", "replace"))
                    continue
            sleep(poll)
    finally:
        if f is not None:
            f.close()
