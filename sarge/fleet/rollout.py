"""Deploy and rollback across a fleet in waves.

The fleet's lock is taken first; then every host selected must answer (its home's
``bin/sarge list --json``: the app's current instance) before any is touched. Each
wave runs on its hosts at once; the next starts only when every host of this one
succeeded. At the first failure (more than ``max_failures``), no further host is
touched: the failed host keeps serving its old version (sarge's own guarantee), the
hosts already done serve the new one, unless ``revert`` sends them back to their
previous instance (``bin/sarge rollback``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import posixpath
import tempfile
import time

from ..errors import FleetError, HostUnreachable, RolloutFailed
from .fleetfile import parse_limit
from .lock import FleetLock, HostLock
from .pack import pack
from .parallel import each
from .remote import Remote
from .waves import waves

#: Where a rollout's archive is put on a host, inside its home (0700), until deployed.
UPLOADS = ("var", "uploads")


@dataclasses.dataclass
class HostResult:
    """What one host did: ``outcome`` is ok, failed, untouched, unreachable, reverted or
    revert failed; ``old`` and ``new`` the app's current instance before and after."""

    host: str
    outcome: str = "untouched"
    old: str | None = None
    new: str | None = None
    seconds: float = 0.0
    wave: int | None = None
    message: str = ""


@dataclasses.dataclass
class Report:
    action: str
    app: str
    results: list
    waves: int = 0
    seconds: float = 0.0
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return all(r.outcome in ("ok", "unreachable") for r in self.results)

    def to_dict(self) -> dict:
        return {"action": self.action, "app": self.app, "ok": self.ok, "waves": self.waves,
                "seconds": round(self.seconds, 2), "sha256": self.sha256,
                "hosts": [dataclasses.asdict(r) | {"seconds": round(r.seconds, 2)}
                          for r in self.results]}


class Rollout:
    """A rollout over ``hosts`` of ``fleet``. ``limit`` and ``max_failures`` default to
    the fleet file's; ``progress(host name or None, line)`` gets the waves and each
    host's own step lines; ``remote(host, ssh)`` reaches a host; ``host_lock(remote,
    what)`` takes the fleet's lock on its first host."""

    def __init__(self, fleet, hosts, *, limit=None, max_failures=None, wait=None,
                 progress=None, remote=Remote, host_lock=HostLock, clock=time.monotonic,
                 sleep=time.sleep):
        self.fleet, self.hosts = fleet, list(hosts)
        self.limit = fleet.rollout.limit if limit is None else limit
        parse_limit(self.limit)  # a bad one: refused before the lock
        self.max_failures = fleet.rollout.max_failures if max_failures is None \
            else max_failures
        self.wait = fleet.rollout.wait if wait is None else wait
        self.progress = progress or (lambda host, line: None)
        self.remote, self.host_lock = remote, host_lock
        self.clock, self.sleep = clock, sleep

    def deploy(self, source, app, *, options=(), listen=None, revert=False,
               skip_unreachable=False, wheels=False, strict=False) -> Report:
        """Deploy ``source`` as ``app`` (``bin/sarge deploy SOURCE --app APP OPTIONS``) on
        every host, in waves; ``wheels`` and ``strict``: how it is packed
        (:func:`~sarge.fleet.pack.pack`)."""
        started = self.clock()
        with tempfile.TemporaryDirectory(prefix="sarge-fleet-") as folder:
            # a source that cannot deploy: refused before any host is asked
            package = pack(source, folder, wheels=wheels, strict=strict)
            with FleetLock(self.fleet.lock_path, f"deploy {app}"):
                return self._deploy(package, app, options, listen, revert, skip_unreachable,
                                    started, source)

    def _deploy(self, package, app, options, listen, revert, skip_unreachable, started,
                source) -> Report:
        remotes = self._reach(app, skip_unreachable)

        def work(remote):
            uploads = posixpath.join(remote.host.home, *UPLOADS)
            path = posixpath.join(uploads, package.name)
            remote.makedirs(uploads)
            remote.put(package.path, path)
            address = remote.host.listen or listen
            try:
                return remote.sarge("deploy", path, "--app", app,
                                    *(["--listen", address] if address else []),
                                    *options, line=self._lines(remote))
            finally:
                remote.remove(path)

        with self._host_lock(remotes, f"deploy {app}", skip_unreachable):
            self.progress(None, f"{source}: {package.note}, {package.size} bytes, sha256 "
                          f"{package.sha256}")
            report = self._waves("deploy", app, remotes, work, revert, started)
        report.sha256 = package.sha256
        return self._ended(report)

    def rollback(self, app, *, options=(), skip_unreachable=False) -> Report:
        """``bin/sarge rollback APP`` on every host, in waves."""
        started = self.clock()
        with FleetLock(self.fleet.lock_path, f"rollback {app}"):
            remotes = self._reach(app, skip_unreachable)

            def work(remote):
                return remote.sarge("rollback", app, *options, line=self._lines(remote))

            with self._host_lock(remotes, f"rollback {app}", skip_unreachable):
                report = self._waves("rollback", app, remotes, work, False, started)
        return self._ended(report)

    @contextlib.contextmanager
    def _host_lock(self, remotes, what, skip_unreachable):
        """The fleet's lock on its first host (:class:`~sarge.fleet.lock.HostLock`), through
        the preflight's connection when that host is selected. A first host that does not
        answer refuses the rollout, unless ``skip_unreachable`` (this machine's lock only,
        then)."""
        first = self.fleet.hosts[0]
        found = remotes.get(first)
        remote = found[0] if found else None
        with contextlib.ExitStack() as stack:
            try:
                if remote is None:
                    remote = self.remote(first, self.fleet.ssh)
                    stack.callback(remote.close)
                stack.enter_context(self.host_lock(remote, what))
            except HostUnreachable as exc:
                if not skip_unreachable:
                    self._close(remotes)
                    raise HostUnreachable(f"the fleet's lock is on its first host, which does "
                                          f"not answer, so no host was touched: {exc}; or "
                                          "pass --skip-unreachable") from exc
                self.progress(first.name, f"no fleet lock there (it does not answer): {exc}")
            except FleetError:
                self._close(remotes)
                raise
            yield

    @staticmethod
    def _close(remotes) -> None:
        for value in remotes.values():
            if value is not None:
                value[0].close()

    def _lines(self, remote):
        return lambda line: self.progress(remote.host.name, line)

    def _reach(self, app, skip_unreachable) -> dict:
        """{host: (its Remote, the app's current instance there)}, or None for a host
        that does not answer (with ``skip_unreachable``; else they are refused)."""
        def current(host):
            remote = self.remote(host, self.fleet.ssh)
            rows = remote.sarge_json("list", "--json")["instances"]
            return remote, next((r["id"] for r in rows if r["application_name"] == app
                                 and r["role"] == "current"), None)

        answers = each(self.hosts, current)
        down = [(host, error) for host, _, error in answers if error]
        if down and not skip_unreachable:
            self._close({host: value for host, value, _ in answers})
            raise HostUnreachable(
                f"{len(down)} of {len(self.hosts)} host(s) do not answer, so no host was "
                f"touched: {down[0][1]}" + (f" (and {len(down) - 1} more)" if len(down) > 1
                                            else "") + "; start them, or pass "
                "--skip-unreachable to roll out to the others")
        for host, error in down:
            self.progress(host.name, f"skipped: {error}")
        return {host: value for host, value, _ in answers}

    def _waves(self, action, app, remotes, work, revert, started) -> Report:
        results = {host: HostResult(host.name, "unreachable" if value is None else "untouched",
                                    old=value and value[1]) for host, value in remotes.items()}
        for host, value in remotes.items():
            if value is None:
                results[host].message = "did not answer: skipped"
        todo = waves([h for h in self.hosts if remotes[h] is not None], self.limit)
        failures = 0
        for number, wave in enumerate(todo, 1):
            self.progress(None, f"wave {number}/{len(todo)}: "
                          + ", ".join(h.name for h in wave))
            for host, timed, error in each(wave, lambda h: self._timed(h, remotes, work)):
                result = results[host]
                answer, result.seconds = timed or (None, 0.0)
                result.wave = number
                if error is None and answer.ok:
                    result.outcome = "ok"
                    result.new = answer.stdout.strip().splitlines()[-1] \
                        if answer.stdout.strip() else None
                else:
                    failures += 1
                    result.outcome = "failed"
                    result.message = str(error) if error else answer.reason()
                self.progress(host.name, f"{result.outcome}"
                              + (f": {result.message}" if result.message else ""))
            if failures > self.max_failures:
                break
            if number < len(todo) and self.wait:
                self.sleep(self.wait)
        if failures and revert:
            self._revert(app, remotes, [r for h, r in results.items() if r.outcome == "ok"])
        self._close(remotes)
        return Report(action, app, [results[h] for h in self.hosts], waves=len(todo),
                      seconds=self.clock() - started)

    def _timed(self, host, remotes, work):
        started = self.clock()
        answer = work(remotes[host][0])
        return answer, self.clock() - started

    def _revert(self, app, remotes, done) -> None:
        """Send the hosts of ``done`` back to their previous instance."""
        by_name = {h.name: remotes[h][0] for h in remotes if remotes[h] is not None}
        self.progress(None, "reverting " + (", ".join(r.host for r in done) or "no host"))

        def back(result):
            remote = by_name[result.host]
            return remote.sarge("rollback", app, line=self._lines(remote))

        for result, answer, error in each(done, back):
            if error is None and answer.ok:
                result.outcome, result.new = "reverted", answer.stdout.strip() or result.old
            else:
                result.outcome = "revert failed"
                result.message = str(error) if error else answer.reason()

    def _ended(self, report) -> Report:
        if report.ok:
            return report
        failed = [r for r in report.results if r.outcome == "failed"]
        first = failed[0] if failed else next(
            r for r in report.results if r.outcome not in ("ok", "unreachable"))
        untouched = sum(1 for r in report.results if r.outcome == "untouched")
        reverted = sum(1 for r in report.results if r.outcome == "reverted")
        raise RolloutFailed(
            f"{report.action} of {report.app} failed on {first.host}: {first.message}; "
            f"{untouched} host(s) not touched"
            + (f", {reverted} sent back to their previous instance" if reverted else "")
            + (", the hosts already done serve the new version (--revert-on-failure sends "
               "them back)" if report.action == "deploy" and not reverted
               and any(r.outcome == "ok" for r in report.results) else ""), report)
