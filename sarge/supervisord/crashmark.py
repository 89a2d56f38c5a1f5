"""The crash mark, ``var/run/ID/crashed.json``: why the crash watch stopped an instance.

The crash watch writes it (:mod:`sarge.supervisord.crashwatch`), ``start`` clears it,
``list`` and ``status`` show an instance that has one (and is stopped) as ``fatal``,
and ``status`` prints it. The record is JSON::

    {"reason": "web exited 3 times in 60s (...); stopped", "process": "web",
     "exitstatus": 3, "time": "2024-05-01T12:00:00Z", "log": ["last", "lines"]}

Every function takes the home's ``layout`` (a :class:`~sarge.layout.Layout`: the mark's
path, and the instance's log) and the instance's id.
"""

from __future__ import annotations

import contextlib
import json
import os

from ..files import File, read_text, write_file
from ..instance import utcnow
from ..logs import tail

#: Lines of the process's log kept in the mark.
LOG_LINES = 5


def write(layout, instance_id, process: str, reason: str, exitstatus) -> None:
    """Mark the instance as stopped by the crash watch: ``reason``, the ``process`` type
    that crashed, its last ``exitstatus`` (or None), the time and its log's last lines."""
    record = {"reason": reason, "process": process, "exitstatus": exitstatus,
              "time": utcnow(), "log": tail(layout.log_path(instance_id, process), LOG_LINES)}
    write_file(File(layout.crash_path(instance_id), json.dumps(record, indent=2)))


def read(layout, instance_id):
    """The instance's mark (a dict), or None; a damaged one reads as a bare reason."""
    text = read_text(layout.crash_path(instance_id))
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return {"reason": "crash loop (damaged record)"}


def exists(layout, instance_id) -> bool:
    """True when the instance has a mark (damaged or not), without reading it."""
    return os.path.exists(layout.crash_path(instance_id))


def clear(layout, instance_id) -> None:
    """Remove the instance's mark; none is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.crash_path(instance_id))
