"""Small named fakes for the fast tier: what a real ``Home`` and ``Deployer`` call on
supervisord, nginx, the virtualenv builder and the clock, kept in memory.

Each fake does what the real one promises and no more, and records what it was asked,
so that a test can check both what sarge did and what it left:

- :class:`FakeSupervisor`: the interface of :class:`sarge.supervisor.Supervisor`. It reads
  the program files it is given (configparser, as supervisord does), keeps each process's
  state, and can be told to refuse the next start or to be down altogether. What a
  started web process *does* is :class:`Apps`'s business.
- :class:`Apps`: the apps the fake supervisord "runs": an HTTP server per running web
  process, in this process, on the instance's port, answering from files of the
  instance's folder as ``tests/apps/webapp`` does (``VERSION``, ``HEALTH``); a folder
  with a file ``EXIT`` holds an app that exits at once with that status.
- :class:`FakeFrontend`: the interface of :class:`sarge.frontend.Frontend` that
  :class:`~sarge.deploy.Deployer` uses; it records the routes it is given and can be
  told to refuse them.
- :class:`FakeEnvironments`: :class:`sarge.build.Environments`, making empty folders.
- :class:`FakeClock`: a monotonic clock that moves on by ``step`` at each reading, so
  that a deploy's timeout runs out in a few readings instead of seconds.
"""

import configparser
import contextlib
import hashlib
import http.server
import os
import shutil
import threading

from sarge.errors import BuildError, ProcessFailed, SupervisordNotRunning, SupervisorError

#: A pid no process has (Linux's pid_max is at most 2**22): a fake process's pid.
FAKE_PID = 2 ** 22 + 1


class FakeSupervisor:
    """supervisord in memory: groups of processes with their states.

    ``on_start(group, process)`` is told of each process started: it returns None when
    the process runs on, or an exit status when it exits at once (the process is then
    shown BACKOFF, as supervisord shows a quick exit). ``on_stop(group, process)`` is
    told of each process stopped.
    """

    def __init__(self, on_start=None, on_stop=None):
        self.on_start = on_start or (lambda group, process: None)
        self.on_stop = on_stop or (lambda group, process: None)
        self.log_dir = None  # where it logs as supervisord does (supervisord.log), if set
        self.up = True
        self.infos = {}  # "group:process" -> info dict
        self.autostart = {}  # group -> what set_autostart last said
        self.events = []  # ("start" or "stop", "group:process"), in the order they happened
        self._refuse_next_start = None

    # -- what the tests tell it -----------------------------------------------------------

    def refuse_next_start(self, reason="NO_FILE: no such file"):
        """Make the next start_group fail as supervisord fails a program it cannot spawn."""
        self._refuse_next_start = reason

    def state(self, name):
        """The state name of the process ``name`` ("group:process"), None if unknown."""
        info = self.infos.get(name)
        return info and info["statename"]

    def groups(self):
        return sorted({info["group"] for info in self.infos.values()})

    def exit(self, name, status=1):
        """The running process ``name`` exits, and stays down (supervisord would restart
        it, or give up: EXITED, for a test of what sarge does meanwhile)."""
        info = self.infos[name]
        assert info["statename"] == "RUNNING", info
        self.on_stop(info["group"], info["name"])
        self._log(f"exited: {info['name']} (exit status {status}; not expected)")
        self._set(name, "EXITED", exitstatus=status)
        info["last_exit"] = f"exit status {status}"

    # -- the interface of sarge.supervisor.Supervisor ----------------------------------

    def _check_up(self, method, name=None):
        if not self.up:
            raise SupervisordNotRunning("supervisord is not running (the fake is down)")

    def is_running(self):
        return self.up

    def processes(self):
        self._check_up("processes")
        return {name: dict(info) for name, info in self.infos.items()}

    def process(self, name):
        self._check_up("process", name)
        info = self.infos.get(name)
        return dict(info) if info else None

    def last_exit(self, name):
        """What sarge's extension says of the process's last exit (None: not exited)."""
        self._check_up("last_exit", name)
        info = self.infos.get(name)
        return info and info.get("last_exit")

    def add(self, name, path):
        """Read the program file at ``path`` (its group ``name``), as supervisord's
        ``addProgramFile`` would; a group already known is left as it is."""
        self._check_up("add", name)
        if any(info["group"] == name for info in self.infos.values()):
            return
        parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"))
        if not parser.read(path):
            raise ProcessFailed(f"supervisord cannot read {path}")
        programs = parser.get(f"group:{name}", "programs", fallback=None)
        names = [p.strip() for p in programs.split(",")] if programs else [name]
        for program in names:
            section = parser[f"program:{program}"]
            process = section.get("process_name", program)
            self.infos[f"{name}:{process}"] = {
                "name": process, "group": name, "statename": "STOPPED", "state": 0,
                "pid": 0, "exitstatus": 0, "start": 0, "stop": 0, "now": 0,
                "description": "Not started", "spawnerr": "",
                "stdout_logfile": section.get("stdout_logfile", ""),
            }
            self.autostart[name] = section.getboolean("autostart")

    def remove(self, name):
        self._check_up("remove", name)
        names = [n for n, info in self.infos.items() if info["group"] == name]
        if any(self.infos[n]["statename"] in ("RUNNING", "STARTING") for n in names):
            raise ProcessFailed(f"{name} is still running; stop it first")
        for n in names:
            del self.infos[n]
        self.autostart.pop(name, None)

    def set_autostart(self, group, autostart):
        self._check_up("set_autostart", group)
        if any(info["group"] == group for info in self.infos.values()):
            self.autostart[group] = bool(autostart)

    def start_group(self, group, wait=True):
        self._check_up("start_group", group)
        names = [n for n, info in self.infos.items() if info["group"] == group]
        if not names:
            raise SupervisorError(f"supervisord does not know {group}")
        self._refuse(sorted(names)[0])
        started = False
        for name in sorted(names):
            started = self._start(name, wait) or started
        return started

    def start_processes(self, group, processes, wait=True):
        self._check_up("start_processes", group)
        started = False
        for process in processes:
            name = f"{group}:{process}"
            if name not in self.infos:
                raise SupervisorError(f"supervisord does not know {name}")
            self._refuse(name)
            started = self._start(name, wait) or started
        return started

    def _refuse(self, name):
        if self._refuse_next_start is not None:
            reason, self._refuse_next_start = self._refuse_next_start, None
            raise ProcessFailed(f"supervisord cannot run {name}: {reason}")

    def _start(self, name, wait):
        if self.infos[name]["statename"] in ("RUNNING", "STARTING"):
            return False
        self.events.append(("start", name))
        self.infos[name]["start"] = 1  # supervisord's laststart: started once
        process = self.infos[name]["name"]
        if self.infos[name]["stdout_logfile"]:  # supervisord opens it as it spawns
            open(self.infos[name]["stdout_logfile"], "a").close()
        status = self.on_start(self.infos[name]["group"], process)
        self._log(f"spawned: '{process}' with pid {FAKE_PID}")
        if status is None:
            self._set(name, "RUNNING", pid=FAKE_PID)
        else:
            # as supervisord: the status of an exit before startsecs is in its log
            # alone, its process info says 0
            self._log(f"exited: {process} (exit status {status}; not expected)")
            self._set(name, "BACKOFF", exitstatus=0)
            self.infos[name]["last_exit"] = f"exit status {status}"
            if wait:
                raise ProcessFailed(f"{name} exited as soon as it was started")
        return True

    def running(self, process):
        """The groups whose process ``process`` runs now."""
        return sorted(info["group"] for info in self.infos.values()
                      if info["name"] == process and info["statename"] == "RUNNING")

    def stop_group(self, group, processes):
        stopped = False
        for process in processes:
            stopped = self.stop(f"{group}:{process}") or stopped
        return stopped

    def stop(self, name):
        self._check_up("stop", name)
        info = self.infos.get(name)
        if info is None or info["statename"] not in ("RUNNING", "STARTING", "BACKOFF"):
            return False  # supervisord's NOT_RUNNING or BAD_NAME
        if info["statename"] != "BACKOFF":
            self.on_stop(info["group"], info["name"])
        self.events.append(("stop", name))
        self._set(name, "STOPPED")
        return True

    def signal(self, name, signal):
        self._check_up("signal", name)
        if self.state(name) != "RUNNING":
            raise SupervisorError(f"supervisord failed on {name}: NOT_RUNNING")

    def _log(self, line):
        if self.log_dir is not None:
            with open(os.path.join(self.log_dir, "supervisord.log"), "a") as f:
                f.write(f"2024-05-01 12:00:00,000 WARN {line}\n")

    def _set(self, name, statename, pid=0, exitstatus=None):
        info = self.infos[name]
        info.update(statename=statename, pid=pid)
        if exitstatus is not None:
            info["exitstatus"] = exitstatus


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET / answers "version VERSION from ID"; GET /health the status in HEALTH."""

    def do_GET(self):
        folder, instance_id = self.server.folder, self.server.instance_id
        if self.path.startswith("/health"):
            status, body = int(_read(folder, "HEALTH", "200")), "health\n"
        else:
            status, body = 200, f"version {_read(folder, 'VERSION', '0')} from {instance_id}\n"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _read(folder, name, default):
    try:
        with open(os.path.join(folder, name)) as f:
            return f.read().strip()
    except OSError:
        return default


class Apps:
    """The web processes a :class:`FakeSupervisor` starts, as HTTP servers in this
    process on their instances' ports (``home.get(id).port``), answering from the files
    of the instance's folder. Pass ``apps.start`` and ``apps.stop`` to the fake; call
    :meth:`close` at the end."""

    def __init__(self):
        self.home = None  # set once the Home that uses the fake exists
        self.servers = {}  # instance id -> ThreadingHTTPServer

    def start(self, group, process):
        folder = self.home.instance_dir(group)
        if os.path.exists(os.path.join(folder, "EXIT")):
            return int(_read(folder, "EXIT", "1"))
        if process != "web":
            return None  # a worker: nothing to serve
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.home.get(group).port),
                                                 _Handler)
        server.daemon_threads = True
        server.folder, server.instance_id = folder, group
        # a short poll: shutdown() waits for the loop to look (by default, half a second)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        self.servers[group] = server
        return None

    def stop(self, group, process):
        server = self.servers.pop(group, None) if process == "web" else None
        if server is not None:
            server.shutdown()
            server.server_close()

    def close(self):
        for group in list(self.servers):
            self.stop(group, "web")


class Drain:
    """What :meth:`FakeFrontend.apply` returns: the routes it replaced."""

    def __init__(self, replaced):
        self.replaced = replaced


class FakeFrontend:
    """The front-end as :class:`~sarge.deploy.Deployer` uses it. ``routes`` is what it
    routes now (None before the first switch); ``fail`` (an exception) makes the next
    :meth:`apply` raise it and keep the routes it had."""

    def __init__(self):
        self.routes = None
        self.applied = []  # every routes list applied, in order
        self.drained = []
        self.fail = None
        self.held = False

    def check_user(self):
        return None

    @contextlib.contextmanager
    def lock(self):
        assert not self.held, "the front-end's lock taken twice"
        self.held = True
        try:
            yield
        finally:
            self.held = False

    def apply(self, routes):
        assert self.held, "routes applied outside the front-end's lock"
        if self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        drain = Drain(self.routes)
        self.routes = [dict(r) for r in routes]
        self.applied.append(self.routes)
        return drain

    def settle(self, drain):
        assert isinstance(drain, Drain), drain

    def drain(self, drain, pids=()):
        assert isinstance(drain, Drain), drain
        self.drained.append(drain)
        return "drained"


class FakeEnvironments:
    """Environments in ``folder``, named by a hash of the requirements, each an empty
    folder once "built". ``fail`` (a message) makes the next :meth:`ensure` fail as a
    failed install does."""

    def __init__(self, folder):
        self.folder = folder
        self.built = []
        self.collected = []  # the names each collect removed
        self.fail = None

    def path_for(self, requirements_path, user=None, python=None):
        digest = hashlib.sha256(python.path.encode() if python else b"")
        if requirements_path is not None:
            with open(requirements_path, "rb") as f:
                digest.update(f.read())
        return os.path.join(self.folder, digest.hexdigest()[:16])

    def ensure(self, path, requirements_path, log_path, *, user=None, cwd=None, env=None,
               python=None, pip_args=()):
        if self.fail is not None:
            message, self.fail = self.fail, None
            raise BuildError(message)
        if os.path.isdir(path):
            return False
        os.makedirs(path)
        self.built.append(path)
        return True

    def collect(self, keep):
        keep = {os.path.basename(p) for p in keep if p}
        removed = sorted(n for n in os.listdir(self.folder) if n not in keep)
        for name in removed:
            shutil.rmtree(os.path.join(self.folder, name))
        self.collected.append(removed)
        return removed

    def names(self):
        return sorted(os.listdir(self.folder))


class FakeClock:
    """A monotonic clock that moves on by ``step`` seconds each time it is read."""

    def __init__(self, step=0.001):
        self.now = 1000.0
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now




class Rig:
    """A real home in ``path`` (real files, :func:`tests.conftest.make_home`'s settings
    and ports, ``settings``: more of them) whose supervisord, apps, front-end,
    environments and clock are the fakes above; :meth:`deployer` makes a
    :class:`~sarge.deploy.Deployer` on it. Call :meth:`close` at the end."""

    #: Where in the worker's port range the fast tier's instances are: apart from the
    #: real tests' (which use the first 200 ports, and 900 up for front-ends).
    PORT_OFFSET = 400

    def __init__(self, path, settings=None):
        from .conftest import make_home

        self.apps = Apps()
        self.supervisor = FakeSupervisor(on_start=self.apps.start, on_stop=self.apps.stop)
        self.home = make_home(path, self.PORT_OFFSET, supervisor=self.supervisor,
                              settings=settings)
        self.apps.home = self.home
        self.supervisor.log_dir = self.home.log_dir
        self.frontend = FakeFrontend()
        self.environments = FakeEnvironments(self.home.envs_dir)
        self.clock = FakeClock(step=0.5)
        self.steps = []  # (step, detail) of every deploy, route and rollback
        self.bindable = True

    @classmethod
    def port_first(cls):
        """The first port of a rig's home in this worker's range."""
        from .conftest import port_base

        return port_base() + cls.PORT_OFFSET

    def deployer(self, **overrides):
        from sarge.deploy import Deployer

        kwargs = dict(progress=lambda step, seconds, detail: self.steps.append((step, detail)),
                      frontend=self.frontend, environments=self.environments,
                      clock=self.clock, sleep=lambda seconds: None,
                      can_bind=lambda listen: self.bindable,
                      check_holder=lambda *args: None)
        kwargs.update(overrides)
        return Deployer(self.home, **kwargs)

    def close(self):
        self.apps.close()
