"""The watch window: after the switch, the new version is watched under real traffic, and
the front-end goes back to the old one by itself when the new one fails.

For ``[deploy] watch`` seconds (``--watch``; 0: no watch) after a deploy's, rollback's
or route's switch, the instance that served before stays running (drained of traffic,
not stopped), and the new one is checked four times a second:

- each of its processes must still be the one that passed the health check before the
  switch (one that exits, even if supervisord starts it again at once, fails the watch,
  with its exit status; a singleton, started after the switch, the one that ran then);
- its health check path must answer 2xx or 3xx (asked every second; two misses in a
  row fail it);
- with sarge's own nginx, the share of its answers through the front-end that are 5xx
  (nginx's ``var/log/nginx-watch.log``: status and upstream of each request, read from
  where it was at the switch) must stay under ``watch_5xx`` once ``watch_requests``
  requests were made, unless the old version did as badly before the switch.

When the answers fail and a process of the instance no longer runs (nginx sees that at
once, supervisord on its next round), the reason given is that process's exit.

During the window, nginx has the old instance as a backup of the new one: a request
the new one cannot take (connection refused or reset: it died) goes to the old one at
once, and is counted as the new one's failure. (A deploy of another app during the
window renders the routes without it, until this window ends.)

A ^C during the window ends it: on a terminal, sarge asks whether to keep the new
version; without one, or when the answer is no, it goes back to the old one.

When the new version fails, the front-end routes to the old instance again (one
reload), the new one is stopped and removed, its logs kept, and the command fails
saying why and that the previous version serves again; when it passes, nginx routes
to it alone. A first deploy has nothing to go back to: its watch fails the command,
and the new version keeps serving.
"""

from __future__ import annotations

import os

from .. import health, processes
from ..errors import DeployError
from ..supervisord import exits, states

#: How often the processes and nginx's log are looked at (the health check: every second).
TICK = 0.25
#: How long supervisord is given to see the exit of a process found gone (its pid no
#: longer runs) when the answers fail, so the watch names the cause, not its symptom.
SETTLE = 2.0
#: How much of nginx's watch log before the switch is read for the old version's rate.
_BEFORE = 256 * 1024


class WatchFailed(DeployError):
    """The new version failed its watch: why, ``at`` seconds after the switch."""

    def __init__(self, reason: str, at: float):
        super().__init__(f"{reason} at +{at:.1f} s", step="watch")


class Watch:
    """Watches ``instance`` (just switched to, ``state`` its app's) through ``switch``
    (:class:`~sarge.deploy.switch.Switch`: processes, health) for ``seconds``;
    ``log`` is nginx's watch log (None: no 5xx count), ``old`` the instance that served
    before (None), ``clock``/``sleep`` time it."""

    def __init__(self, switch, instance, state, seconds, *, log=None, old=None,
                 threshold=0.05, min_requests=20, clock, sleep, probe=health.probe):
        self.switch, self.instance, self.state = switch, instance, state
        self.seconds, self.log, self.old = seconds, log, old
        self.threshold, self.min_requests = threshold, min_requests
        self.clock, self.sleep, self.probe = clock, sleep, probe
        self.offset = _size(log) if log else 0
        self.requests = self.errors = 0
        self._partial = b""

    def run(self) -> str:
        """Watch until the window ends; return what was seen (one line), or raise
        :class:`WatchFailed`."""
        start = self.clock()
        old_rate = self._old_rate()
        # the processes that passed the health check (one that died or was started again
        # during the switch fails the watch), and the singletons started since
        pids = {**self.switch.running(self.instance, self.instance.processes),
                **self.switch.checked.get(self.instance.id, {})}
        misses, probed = 0, None
        while True:
            at = self.clock() - start
            died = self._died(pids)
            if died:
                raise WatchFailed(died, at)
            if probed is None or at - probed >= 1.0:  # the health check: every second
                probed = at
                answer = self.probe(self._target(), self.state.check, timeout=2.0,
                                    headers=health.headers_for(self.state.site))
                misses = 0 if isinstance(answer, int) and answer < 400 else misses + 1
                if misses >= 2:
                    raise WatchFailed(self._cause(pids) or f"GET {self.state.check} "
                                      f"answered {answer} twice in a row", at)
            self._read()
            rate = self.errors / self.requests if self.requests else 0.0
            if (self.requests >= self.min_requests and rate > self.threshold
                    and (old_rate is None or rate > 2 * old_rate)):
                raise WatchFailed(self._cause(pids) or (
                    f"5xx rate {rate:.0%} over {self.requests} requests"
                    + (f" (the old version's: {old_rate:.0%})" if old_rate else "")), at)
            if at >= self.seconds:
                break
            self.sleep(min(TICK, max(0.0, self.seconds - at)))
        return (f"{self.seconds:g}s: processes up, {self.state.check} answering"
                + (f", {self.errors} of {self.requests} answers 5xx" if self.log else ""))

    def _died(self, pids):
        """Why a process of the instance is no longer the one of ``pids`` (``{type: pid}``:
        it exited, or exited and was started again), or None."""
        replaced = self.switch.replaced(self.instance, pids)
        if replaced is None:
            return None
        process, info = replaced
        home = self.switch.home
        how = exits.how_exited(home, home.supervisor, self.instance.id, process, pids[process])
        again = info is not None and info["statename"] not in states.DEAD
        return (f"its {process} process exited ({how})"
                + (", and was started again" if again else ""))

    def _cause(self, pids):
        """When answers fail: the exit of a process of the instance behind them, or None.
        nginx sees a dead process at once, supervisord on its next round; a pid that no
        longer runs gets up to :data:`SETTLE` seconds for supervisord to say how it
        exited."""
        if all(processes.running(pid) for pid in pids.values()):
            return None
        deadline = self.clock() + SETTLE
        while not (died := self._died(pids)) and self.clock() < deadline:
            self.sleep(0.1)
        return died

    def _target(self):
        instance = self.instance
        return self.switch.home.app_socket(instance.id) if instance.unix_socket \
            else instance.port

    # -- nginx's watch log ------------------------------------------------------------------

    def _read(self) -> None:
        """Count the new instance's answers logged since the last read."""
        if not self.log:
            return
        try:
            with open(self.log, "rb") as f:
                if os.fstat(f.fileno()).st_size < self.offset:
                    self.offset = 0  # rotated
                f.seek(self.offset)
                data = self._partial + f.read(4 << 20)
                self.offset = f.tell()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        self._partial = lines.pop()
        mine = _upstream(self.switch, self.instance)
        for line in lines:
            status, upstreams = _fields(line)
            if mine & set(upstreams):  # a failover to the old one: the new one's error
                self.requests += 1
                self.errors += status >= 500 or upstreams[-1] not in mine

    def _old_rate(self):
        """The old instance's 5xx share in the log before the switch, or None."""
        if not (self.log and self.old):
            return None
        try:
            with open(self.log, "rb") as f:
                f.seek(max(0, self.offset - _BEFORE))
                data = f.read(min(self.offset, _BEFORE))
        except FileNotFoundError:
            return None
        theirs = _upstream(self.switch, self.old)
        answers = [status for status, upstreams in map(_fields, data.split(b"\n")[1:])
                   if len(upstreams) == 1 and upstreams[0] in theirs]
        if len(answers) < self.min_requests:
            return None
        return sum(s >= 500 for s in answers) / len(answers)


def _upstream(switch, instance) -> set:
    """How nginx's ``$upstream_addr`` names the instance (its web processes): an app on a
    socket by the link it serves through (:class:`~sarge.frontend.sites.Links`; the
    instance of before the switch had it until then, the new one after)."""
    if instance.unix_socket:
        return {f"unix:{switch.home.front_link(instance.application_name)}".encode()}
    return {f"127.0.0.1:{port}".encode() for _, port in instance.web_ports()}


def _fields(line: bytes):
    """(status, [upstream, ...]) of a line ``$msec $status $upstream_addr`` (nginx lists
    each upstream it tried: ``127.0.0.1:5001, 127.0.0.1:5000``); (0, []) if bad."""
    parts = line.split()
    if len(parts) < 3 or not parts[1].isdigit():
        return 0, []
    return int(parts[1]), [p.rstrip(b",") for p in parts[2:]]


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def watched(deployer, old, new, seconds, failed) -> None:
    """The step ``watch`` of a switch from the app state ``old`` to ``new``: when the new
    version fails it, the step ``switch back`` routes to ``old``'s instance again and
    ``failed(error)`` gives the error to raise (after removing or stopping the new one).
    With nothing to go back to, the error says the new version serves on."""
    home, switch, steps = deployer.home, deployer.switch, deployer.steps
    instance = home.get(new.current)
    previous = home.get(old.current) if old.current and old.current != new.current else None
    settings = home.settings
    watch = Watch(switch, instance, new, seconds,
                  log=getattr(deployer.frontend, "watch_log", None), old=previous,
                  threshold=settings.watch_5xx, min_requests=settings.watch_requests,
                  clock=steps.clock, sleep=deployer.sleep)
    try:
        with steps.step("watch") as step:
            try:  # a ^C from here on is the window's, the backup's reload included
                if previous is not None:  # the old one takes what the new one cannot, at once
                    switch.switch(new, new, backup={new.name: previous})
                steps.fault_point("watch:window")
                step["detail"] = watch.run()
            except KeyboardInterrupt:
                # ^C: the operator has seen enough; on a terminal, asked which to keep
                if previous is not None and not (deployer.ask and deployer.ask(
                        f"Keep {instance.id}, the new version of {new.name}? (no: "
                        f"{previous.id} serves again)")):
                    raise DeployError("the watch was interrupted", step="watch") from None
                step["detail"] = "interrupted: the new version kept"
        if previous is not None:
            deployer.frontend.drain(switch.switch(new, new))  # the new one alone again
    except DeployError as exc:
        if previous is None:
            raise DeployError(f"{instance.id} failed its watch: {exc}; nothing served "
                              f"{new.name} before it, so it serves on", step="watch") from exc
        with steps.step("switch back") as step:
            drain = switch.switch(new, old)
            step["detail"] = f"{new.listen} -> {switch.target(previous)}"
        deployer.frontend.drain(drain)
        raise failed(exc) from exc
