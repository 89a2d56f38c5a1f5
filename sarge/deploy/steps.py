"""Named steps: each is timed, reported to ``progress``, and a failure in it is a
:class:`~sarge.errors.DeployError` that names it."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from ..errors import DeployError, SargeError


def reason(exc) -> str:
    """Why a step failed, on one line: an OSError says what and on which file."""
    if isinstance(exc, SargeError):
        text = str(exc)
        if isinstance(exc.__cause__, SargeError):
            text += f": {exc.__cause__}"
        return text
    if isinstance(exc, OSError) and exc.strerror:
        files = [f for f in (exc.filename, exc.filename2) if f is not None]
        return exc.strerror + "".join(f": {f}" for f in files)
    return f"{type(exc).__name__}: {exc}"


class Steps:
    """Runs named steps: ``progress(step, seconds, detail)`` is told of each finished one;
    ``clock`` times them; ``fault`` names a point where this process kills itself with
    SIGKILL (the fault-injection tests): a step's name (killed as it starts) or one of
    the points :meth:`fault_point` is called with."""

    def __init__(self, *, progress=None, clock=time.monotonic, fault=None):
        self.progress = progress or (lambda step, seconds, detail: None)
        self.clock = clock
        self.fault = fault
        #: (name, seconds) of each step finished, in order: for the deploy history.
        self.done = []

    def fault_point(self, name: str) -> None:
        if self.fault == name:
            os.kill(os.getpid(), signal.SIGKILL)

    @contextlib.contextmanager
    def step(self, name: str):
        """Run the body as the step ``name``; it may set ``detail`` in the dict it gets.
        A :class:`SargeError` or an ``OSError`` in it becomes a :class:`DeployError` with
        ``step=name`` (one that names a step already keeps it)."""
        self.fault_point(name)
        detail = {}
        start = self.clock()
        try:
            yield detail
        except (SargeError, OSError) as exc:
            if isinstance(exc, DeployError) and exc.step is not None:
                raise
            raise DeployError(reason(exc), step=name) from exc
        seconds = self.clock() - start
        self.done.append((name, round(seconds, 3)))
        self.progress(name, seconds, detail.get("detail", ""))
