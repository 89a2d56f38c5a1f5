"""Real apps deploy unchanged: gunicorn's graceful reload, Celery's warm shutdown and
a singleton ``celery beat``, with real supervisord, nginx, gunicorn, Celery and Redis;
every install from the wheels in .cache/wheels (the OFFLINE settings), no network."""

import os
import subprocess
import time

import psutil
import pytest

from .conftest import (
    OFFLINE,
    WEBAPP,
    deploy,
    front,
    kill_home,
    listen_port,
    make_home,
    needs_wheels,
    start_supervisord,
    wait_until,
)
from .test_deploy import Load


@pytest.fixture
def offline(tmp_path_factory):
    """A home whose deploys install from .cache/wheels, its supervisord running."""
    needs_wheels()
    h = make_home(tmp_path_factory.mktemp("h") / "home", settings=OFFLINE)
    start_supervisord(h)
    yield h
    kill_home(h)


def supervisorctl(h, *args):
    return subprocess.run([os.path.join(h.path, "bin", "supervisorctl"), *args],
                          capture_output=True, text=True, timeout=60)


def test_gunicorn_is_what_supervisord_watches_and_reloads_on_hup(offline, tmp_path):
    """The Procfile's line is exec'd: supervisord's pid is gunicorn's master, so
    ``supervisorctl signal HUP ID:web`` is gunicorn's graceful reload (new workers, the
    same master and socket), and no request fails meanwhile."""
    port = listen_port()
    result = deploy(offline, WEBAPP, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    master = psutil.Process(offline.supervisor.process(instance_id + ":web")["pid"])
    assert "gunicorn" in " ".join(master.cmdline()), master.cmdline()
    assert master.name() != "sh"
    workers = wait_until(lambda: {p.pid for p in master.children()} if len(
        master.children()) == 2 else None, 10, "gunicorn's two workers")
    with Load(port, clients=8) as load:
        wait_until(lambda: load.ok > 50, 20, "requests to flow")
        result = supervisorctl(offline, "signal", "HUP", f"{instance_id}:web")
        assert result.returncode == 0 and "ERROR" not in result.stdout, result.stdout
        reloaded = wait_until(
            lambda: (lambda now: now if len(now) == 2 and not now & workers else None)(
                {p.pid for p in master.children()}), 20, "gunicorn to replace its workers")
        before = load.ok
        wait_until(lambda: load.ok > before + 50, 20, "requests to the new workers")
    assert load.failures == [], load.failures[:10]
    info = offline.supervisor.process(instance_id + ":web")
    # the same process (a slow machine may not have passed startsecs yet: STARTING)
    assert info["pid"] == master.pid and info["statename"] in ("STARTING", "RUNNING")
    assert front(port) == (200, f"version 1 from {instance_id}\n")
    print(f"HUP under load: {load.ok} requests, 0 failed; workers {sorted(workers)} -> "
          f"{sorted(reloaded)}")


CELERYAPP = os.path.join(os.path.dirname(WEBAPP), "celeryapp")


def marks(h, folder, app="celery"):
    """The tasks' names in $SARGE_DATA_DIR/FOLDER (started, done)."""
    path = os.path.join(h.data_dir(app), folder)
    return set(os.listdir(path)) if os.path.isdir(path) else set()


def deploy_celery(h, port=None):
    args = ["--listen", f"127.0.0.1:{port}"] if port else []
    result = deploy(h, CELERYAPP, "--app", "celery", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def worker_ready(h, instance_id):
    def ready():
        with open(h.log_path(instance_id, "worker")) as f:
            return " ready." in f.read()
    return wait_until(ready, 60, f"{instance_id}'s worker to be ready", ignore=(OSError,))


def warm_shutdown(h, instance_id):
    """Wait until ``instance_id``'s worker has begun its warm shutdown (its log says so)."""
    def begun():
        with open(h.log_path(instance_id, "worker")) as f:
            return "Warm shutdown" in f.read()
    wait_until(begun, 60, f"{instance_id}'s worker to begin its warm shutdown")


@pytest.mark.heavy
def test_celery_finishes_its_tasks_through_a_deploy_and_a_stop(offline, redis_server):
    """The stop signal reaches the worker's main process alone (Celery's warm shutdown:
    it stops taking tasks, finishes those it runs, exits); its pool children are never
    signalled, so a task running when its instance is stopped, by a deploy or by
    ``sarge stop``, finishes (before: ``Worker exited prematurely: signal 15``).

    The tasks run until the test lets them end (a file in the app's data folder), once
    the stopped worker has begun its shutdown: the deploy and the stop wait for them."""
    sarge_config = subprocess.run(
        [os.path.join(offline.path, "bin", "sarge"), "config", "celery",
         f"CELERY_BROKER_URL={redis_server}"], capture_output=True, text=True)
    assert sarge_config.returncode == 0, sarge_config.stderr
    port = listen_port(1)
    first = deploy_celery(offline, port)
    worker_ready(offline, first)
    program = open(offline.program_path(first)).read()
    assert "stopwaitsecs = 30" in program and "stopasgroup = false" in program
    for name in ("t1", "t2"):
        assert front(port, f"/enqueue/{name}?seconds=60&until=release1") == (
            200, f"queued {name}\n")
    wait_until(lambda: marks(offline, "started") == {"t1", "t2"}, 30, "both tasks to start")
    sarge_bin = os.path.join(offline.path, "bin", "sarge")
    started = time.monotonic()
    proc = subprocess.Popen([sarge_bin, "deploy", CELERYAPP, "--app", "celery"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        warm_shutdown(offline, first)  # stop old: t1 and t2 are running in first's worker
        assert marks(offline, "done") == set()
        open(os.path.join(offline.data_dir("celery"), "release1"), "w").close()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    second = out.strip()
    assert marks(offline, "done") == {"t1", "t2"}  # finished before its worker exited
    print(f"deploy with two tasks running: {time.monotonic() - started:.1f}s")
    log = open(offline.log_path(first, "worker")).read()
    assert "exited prematurely" not in log and "WorkerLostError" not in log, log[-2000:]
    assert log.index("Warm shutdown") < log.index("succeeded")

    worker_ready(offline, second)
    assert front(port, "/enqueue/t3?seconds=60&until=release2") == (200, "queued t3\n")
    wait_until(lambda: "t3" in marks(offline, "started"), 30, "t3 to start")
    proc = subprocess.Popen([sarge_bin, "stop", second], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        warm_shutdown(offline, second)
        assert "t3" not in marks(offline, "done")
        open(os.path.join(offline.data_dir("celery"), "release2"), "w").close()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "t3" in marks(offline, "done")
    log = open(offline.log_path(second, "worker")).read()
    assert "exited prematurely" not in log and "WorkerLostError" not in log, log[-2000:]
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if offline.path in " ".join(p.info["cmdline"] or [])
                 and "worker" in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []  # the pool went with its worker


class Beats:
    """A thread that counts, every 20 ms, the ``celery beat`` processes of a home (by
    psutil: what runs, whatever supervisord thinks); ``most`` is the highest count."""

    def __init__(self, h):
        import threading

        self.home = h
        self.most = 0
        self.seen = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch)

    def now(self):
        found = set()
        for proc in psutil.process_iter(["cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if "-A tasks beat" in line and self.home.path in line:
                found.add(proc.pid)
        return found

    def watch(self):
        while not self.stop.is_set():
            found = self.now()
            self.seen |= found
            self.most = max(self.most, len(found))
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        # a last look: the test's own wait may have seen a beat the thread had not yet
        found = self.now()
        self.seen |= found
        self.most = max(self.most, len(found))


@pytest.mark.heavy
def test_a_singleton_beat_never_runs_twice(offline, redis_server):
    """``[processes.beat] singleton = true``: through a deploy and a rollback there is
    never a moment with two ``celery beat`` processes, and the one that runs is the
    current instance's (its worker and web overlap with the old ones, as ever)."""
    assert subprocess.run([os.path.join(offline.path, "bin", "sarge"), "config", "celery",
                           f"CELERY_BROKER_URL={redis_server}"]).returncode == 0
    port = listen_port(2)
    with Beats(offline) as beats:
        first = deploy_celery(offline, port)
        wait_until(lambda: len(beats.now()) == 1, 30, "the first beat")
        second = deploy_celery(offline)
        wait_until(lambda: len(beats.now()) == 1, 30, "the second beat")
        rollback = subprocess.run([os.path.join(offline.path, "bin", "sarge"), "rollback",
                                   "celery"], capture_output=True, text=True, timeout=120)
        assert rollback.returncode == 0, rollback.stderr
        assert "start singletons" in rollback.stderr
        wait_until(lambda: len(beats.now()) == 1, 30, "the beat after the rollback")
    assert beats.most == 1 and len(beats.seen) == 3, (beats.most, beats.seen)
    (pid,) = beats.now()
    assert offline.supervisor.process(first + ":beat")["pid"] == pid
    assert offline.supervisor.process(second + ":beat")["statename"] == "STOPPED"
    assert front(port) == (200, f"celeryapp from {first}\n")
