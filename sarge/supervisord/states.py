"""supervisord's process states, named once, from :mod:`supervisor.states`.

supervisord's info on a process gives its state by name (``statename``):

============  ==========================================================
``STOPPED``   never started, or stopped on request
``STARTING``  started, not yet up for ``startsecs``
``RUNNING``   up for ``startsecs`` (or more)
``BACKOFF``   exited before ``startsecs``; supervisord starts it again
``STOPPING``  asked to stop, not gone yet
``EXITED``    exited after ``startsecs`` (``autorestart`` decides what next)
``FATAL``     exited before ``startsecs`` ``startretries`` times: given up
``UNKNOWN``   supervisord lost track of it
============  ==========================================================

The sets below are the questions sarge asks of a state; each is a frozenset of names.
Importing this module costs next to nothing (:mod:`supervisor.states` imports no other
module).
"""

from __future__ import annotations

from supervisor.states import (
    RUNNING_STATES,
    STOPPED_STATES,
    ProcessStates,
    getProcessStateDescription,
)


def _names(codes) -> frozenset:
    return frozenset(getProcessStateDescription(code) for code in codes)


#: Every state's name, in the order of supervisor's codes (STOPPED first, UNKNOWN last).
NAMES = tuple(getProcessStateDescription(code) for code in sorted(
    value for name, value in vars(ProcessStates).items() if not name.startswith("_")))

#: supervisor's running states: up, or being started (STARTING, RUNNING, BACKOFF).
RUNNING = _names(RUNNING_STATES)

#: supervisor's stopped states: not running, not being started (STOPPED, EXITED, FATAL,
#: UNKNOWN).
STOPPED = _names(STOPPED_STATES)

#: Up, or on its way up without having failed yet (RUNNING, STARTING).
UP = _names((ProcessStates.RUNNING, ProcessStates.STARTING))

#: Exited when it was meant to run (BACKOFF, EXITED, FATAL); not STOPPED: a program just
#: added to supervisord is STOPPED until its autostart starts it.
FAILED = _names((ProcessStates.BACKOFF, ProcessStates.EXITED, ProcessStates.FATAL))

#: No process alive now (STOPPED, EXITED, FATAL, UNKNOWN, and BACKOFF, between two tries).
DEAD = STOPPED | _names((ProcessStates.BACKOFF,))
