"""A fleet in memory for the fleet's fast tier: :class:`FakeRemote` stands for a host's
:class:`~sarge.fleet.remote.Remote` (passed as ``Rollout(remote=...)``), answering
``bin/sarge list --json``, ``deploy`` and ``rollback`` from a :class:`World`."""

from __future__ import annotations

import json

from sarge.errors import HostUnreachable, RolloutLocked
from sarge.fleet.remote import Answer


class World:
    """What each host runs: ``current[name]`` (an instance id), ``previous[name]``; hosts
    in ``down`` do not answer; hosts in ``failing`` fail their deploys. ``calls`` lists
    (host, command) in order."""

    def __init__(self, names):
        self.current = {n: f"{n}-v1" for n in names}
        self.previous = {n: None for n in names}
        self.down, self.failing, self.calls = set(), set(), []
        self.counter = 1
        self.locked_by = None  # what holds the lock on the first host


class FakeHostLock:
    """The fleet's lock on its first host, in the :class:`World`: ``FakeHostLock(world)``
    is what ``Rollout(host_lock=...)`` takes."""

    def __init__(self, world):
        self.world = world

    def __call__(self, remote, what):
        return _HeldLock(self.world, remote, what)


class _HeldLock:
    def __init__(self, world, remote, what):
        self.world, self.remote, self.what = world, remote, what

    def __enter__(self):
        self.remote._check()
        if self.world.locked_by:
            raise RolloutLocked(f"another rollout of this fleet is running "
                                f"({self.world.locked_by})")
        self.world.calls.append((self.remote.host.name, "lock"))
        self.world.locked_by = self.what

    def __exit__(self, *exc):
        self.world.locked_by = None


class FakeRemote:
    def __init__(self, world):
        self.world = world

    def __call__(self, host, ssh):  # the Rollout's ``remote(host, ssh)``
        return _Host(self.world, host)


class _Host:
    def __init__(self, world, host):
        self.world, self.host = world, host

    def _check(self):
        if self.host.name in self.world.down:
            raise HostUnreachable(f"{self.host.name}: cannot reach {self.host.address} "
                                  "over SSH: connection refused")

    def sarge_json(self, *args):
        self._check()
        self.world.calls.append((self.host.name, args[0]))
        return {"instances": [{"id": self.world.current[self.host.name],
                               "application_name": "web", "role": "current",
                               "state": "running"}]}

    def sarge(self, command, *args, line=None, timeout=None):
        self._check()
        name = self.host.name
        self.world.calls.append((name, command))
        if line:
            line(f"  {command}  0.01s")
        if command == "deploy":
            if name in self.world.failing:
                return Answer(1, "", "sarge: the health check failed\n")
            self.world.counter += 1
            self.world.previous[name] = self.world.current[name]
            self.world.current[name] = f"{name}-v{self.world.counter}"
        elif command == "rollback":
            if not self.world.previous[name]:
                return Answer(1, "", "sarge: nothing to roll back to\n")
            self.world.current[name], self.world.previous[name] = (
                self.world.previous[name], self.world.current[name])
        return Answer(0, self.world.current[name] + "\n", "")

    def makedirs(self, path, mode=0o700):
        self._check()

    def put(self, local, remote, mode=0o600):
        self._check()
        self.world.calls.append((self.host.name, "put"))

    def remove(self, path):
        pass

    def close(self):
        pass


def fleet_file(folder, count=3, rollout="", extra_host=""):
    """A fleet file of ``count`` hosts (h1...) in ``folder``: its path."""
    lines = ["[rollout]", rollout, ""]
    for n in range(1, count + 1):
        lines += ["[[hosts]]", f'address = "deploy@10.0.0.{n}"', f'home = "/srv/h{n}"',
                  f'name = "h{n}"', f'roles = {json.dumps(["web"] if n % 2 else ["worker"])}',
                  extra_host if n == 1 else "", ""]
    path = folder / "fleet.toml"
    path.write_text("\n".join(lines))
    return str(path)
