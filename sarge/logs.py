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


def keep_failed(layout, instance_id: str, processes, keep: int) -> list:
    """Move the logs of ``instance_id``'s ``processes`` (types) to ``var/log/failed`` as
    ``ID-TYPE.log`` before the instance is destroyed (a process still writing goes on
    writing there: a rename keeps the open file), and remove the oldest there beyond
    the last ``keep`` instances' (0 keeps none). Returns the paths kept."""
    if keep <= 0:
        return []
    os.makedirs(layout.failed_logs_dir, 0o750, exist_ok=True)  # homes made before it
    kept = []
    for process in processes:
        source, target = layout.log_path(instance_id, process), layout.failed_log_path(
            instance_id, process)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            continue
        os.utime(target)  # the age that pruning goes by: when it failed
        kept.append(target)
    _prune_failed(layout.failed_logs_dir, keep)
    return kept


def _prune_failed(folder: str, keep: int) -> None:
    """Keep the logs of the ``keep`` instances that failed last (``ID-TYPE.log``: the type
    has no '-')."""
    newest = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and entry.name.endswith(".log"):
                instance_id = entry.name.rpartition("-")[0]
                mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                names, latest = newest.get(instance_id, ([], 0))
                newest[instance_id] = (names + [entry.name], max(latest, mtime))
    ordered = sorted(newest.values(), key=lambda item: item[1], reverse=True)
    for names, _ in ordered[keep:]:
        for name in names:
            try:
                os.unlink(os.path.join(folder, name))
            except FileNotFoundError:
                pass
