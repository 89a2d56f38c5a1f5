"""Real apps deploy unchanged: gunicorn's graceful reload, Celery's warm shutdown and
a singleton ``celery beat``, with real supervisord, nginx, gunicorn, Celery and Redis;
every install from the wheels in .cache/wheels (the OFFLINE settings), no network."""

import os
import subprocess

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
    assert info["pid"] == master.pid and info["statename"] == "RUNNING"
    assert front(port) == (200, f"version 1 from {instance_id}\n")
    print(f"HUP under load: {load.ok} requests, 0 failed; workers {sorted(workers)} -> "
          f"{sorted(reloaded)}")
