"""Backing services for real: Debian's redis-server, memcached and rabbitmq-server run by
the home's real supervisord, a Django app (tests/apps/djangocache) keeping its cache in
Redis and its sessions in Memcached, and the Celery app (tests/apps/celeryapp) with
RabbitMQ as its broker, deployed from .cache/wheels behind a real nginx.

As root (CI) the apps and their services run as a throwaway user of their own. One
home for the module (its tests on one xdist worker): each test adds the services of an
app of its own."""

import http.client
import json
import os
import shutil
import signal
import stat
import subprocess

import psutil
import pytest

from sarge.ports import listeners
from sarge.services.kinds import KINDS
from sarge.services.redis import ask as redis_ask
from sarge.services.store import ServiceStore

from .conftest import (
    HERE,
    OFFLINE,
    _open_home,
    deploy,
    edit_settings,
    front,
    kill_home,
    listen_port,
    make_home,
    name_user,
    needs_wheels,
    sarge,
    start_supervisord,
    stop_supervisord,
    wait_until,
)

DJANGOCACHE = os.path.join(HERE, "apps", "djangocache")
CELERYAPP = os.path.join(HERE, "apps", "celeryapp")

pytestmark = pytest.mark.xdist_group("services_real")


def needs(*programs):
    for program in programs:
        if not shutil.which(program, path="/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin"):
            pytest.skip(f"{program} is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def services_home(request, tmp_path_factory):
    """A running home deploying from .cache/wheels; as root its apps (and so their
    services) run as a user of their own: (home, that user or None)."""
    needs_wheels()
    if os.geteuid() == 0 and shutil.which("useradd"):
        homes = _open_home()
        h = next(homes)
        user = request.getfixturevalue("throwaway_user")
        name_user(h, user.name)
        edit_settings(h, OFFLINE)
        yield h, user
        next(homes, None)
        return
    h = make_home(tmp_path_factory.mktemp("svc") / "home", settings=OFFLINE)
    start_supervisord(h)
    yield h, None
    kill_home(h)


def services(h, app):
    return {r["kind"]: r for r in json.loads(
        sarge(h, "service", "list", app, "--json", check=True).stdout)}


def server_pid(h, service_id):
    return h.supervisor.process(f"{service_id}:server")["pid"]


def gone(pid):
    """Exited (a zombie that nobody has reaped yet counts: it holds nothing)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def ask(port, path, method="GET", body=None, cookie=None):
    """(status, body, the session cookie set, if any) of one request through nginx."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Connection": "close", **({"Cookie": cookie} if cookie else {})}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        cookies = [v.split(";")[0] for k, v in response.getheaders() if k == "Set-Cookie"]
        return response.status, response.read().decode(), (cookies or [None])[0]
    finally:
        conn.close()


class Shop:
    """The Django app ``shop`` (tests/apps/djangocache) with its Redis and Memcached,
    deployed once; a note written and a session's first visit."""

    def __init__(self, h, user):
        self.home, self.user = h, user
        self.found = services(h, "shop")
        self.password = json.load(open(h.service_record_path("svc.shop.redis")))["password"]
        self.port = listen_port()
        self.first = deploy(h, DJANGOCACHE, "--app", "shop", "--listen",
                            f"127.0.0.1:{self.port}", check=True).stdout.strip()
        self.pids = {k: r["pid"] for k, r in services(h, "shop").items()}
        assert ask(self.port, "/notes/first", "PUT", b"written before the deploys")[:2] == (
            200, "kept\n")
        status, body, self.cookie = ask(self.port, "/visits")
        assert (status, body) == (200, "1\n") and self.cookie
        self.visits = 1

    def visit(self):
        self.visits += 1
        assert ask(self.port, "/notes/first")[:2] == (200, "written before the deploys")
        assert ask(self.port, "/visits", cookie=self.cookie)[:2] == (200, f"{self.visits}\n")


@pytest.fixture(scope="module")
def shop(services_home):
    """:class:`Shop`, its services added with ``sarge service add`` (Redis, and Memcached
    with 16 MiB), for the tests that follow in this module's order."""
    needs("redis-server", "memcached")
    h, user = services_home
    assert sarge(h, "service", "add", "shop", "redis", check=True).stdout == "svc.shop.redis\n"
    sarge(h, "service", "add", "shop", "memcached", "--memory", "16", check=True)
    yield Shop(h, user)
    sarge(h, "undeploy", "shop", "--data", "--yes")  # when the last test did not


def test_redis_and_memcached_run_as_the_apps_user_and_its_password_stays_private(shop):
    """Redis (the cache) and Memcached (the sessions) run as the app's user on 127.0.0.1;
    the password is in the record (root's, 0600) and the server's config (0640, the
    user's group), and their URLs reach the instances, never supervisord's configuration,
    what ``list`` prints nor the history."""
    h, user, found, password = shop.home, shop.user, shop.found, shop.password
    assert {k: r["state"] for k, r in found.items()} == {"redis": "running",
                                                         "memcached": "running"}
    for row in found.values():
        held = listeners(row["port"])
        assert held and {li.address for li in held} == {"127.0.0.1"}, held
        if user is not None:
            assert psutil.Process(row["pid"]).username() == user.name
    assert found["memcached"]["memory"] == 16 and "-m 16" in " ".join(
        psutil.Process(found["memcached"]["pid"]).cmdline())
    record = h.service_record_path("svc.shop.redis")
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    config = os.stat(h.service_config_path("svc.shop.redis"))
    if user is not None:
        assert (stat.S_IMODE(config.st_mode), config.st_uid, config.st_gid) == (
            0o640, 0, user.gid)
    assert password not in json.dumps(found)
    history = json.loads(sarge(h, "history", "shop", "--json", check=True).stdout)["records"]
    assert [(r["action"], r["to"], r["outcome"]) for r in history][:2] == [
        ("service add", "svc.shop.redis", "ok"), ("service add", "svc.shop.memcached", "ok")]
    assert password not in open(h.history_path).read()
    web = psutil.Process(h.supervisor.process(f"{shop.first}:web")["pid"])
    assert web.environ()["REDIS_URL"] == f"redis://:{password}@127.0.0.1:{found['redis']['port']}/0"
    assert web.environ()["MEMCACHED_SERVERS"] == f"127.0.0.1:{found['memcached']['port']}"
    for folder in ("etc/supervisor.d", "etc"):
        for name in os.listdir(os.path.join(h.path, folder)):
            path = os.path.join(h.path, folder, name)
            if os.path.isfile(path):
                assert password not in open(path).read(), path


def test_djangos_cache_and_sessions_survive_deploys_and_a_rollback_that_restart_no_service(
        shop, tmp_path):
    """What the app wrote survives two more deploys and a rollback, none of which
    restarts a service; a backup is the RDB of a BGSAVE (0600)."""
    h = shop.home
    for _ in range(2):
        deploy(h, DJANGOCACHE, "--app", "shop", check=True)
        shop.visit()
    sarge(h, "rollback", "shop", check=True)
    shop.visit()
    assert {k: r["pid"] for k, r in services(h, "shop").items()} == shop.pids

    backup = tmp_path / "shop.rdb"
    sarge(h, "service", "backup", "shop", "redis", "-o", str(backup), check=True)
    data = backup.read_bytes()
    assert data.startswith(b"REDIS") and b"note:first" in data
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_after_a_restart_redis_still_has_its_data_and_undeploy_data_removes_the_services(
        shop):
    """After supervisord restarts (a reboot), Redis still has what was written (AOF) and
    Memcached, a cache, starts empty; ``undeploy --data`` removes both services, their
    programs, ports and data."""
    h, port = shop.home, shop.port
    stop_supervisord(h)  # everything stops, as at a reboot
    start_supervisord(h)
    wait_until(lambda: front(port)[0] == 200, 60, "the app to serve again", ignore=(OSError,))
    wait_until(lambda: ask(port, "/notes/first")[0] == 200, 30, "Redis to answer",
               ignore=(OSError,))
    assert ask(port, "/notes/first")[:2] == (200, "written before the deploys")
    assert ask(port, "/visits", cookie=shop.cookie)[:2] == (200, "1\n")  # a cache: gone
    restarted = server_pid(h, "svc.shop.redis")
    assert restarted != shop.pids["redis"]

    done = json.loads(sarge(h, "undeploy", "shop", "--data", "--yes", "--json",
                            check=True).stdout)
    assert sorted(done["services"]) == ["svc.shop.memcached", "svc.shop.redis"]
    assert services(h, "shop") == {}
    assert not any(n.startswith("svc.shop.") for n in os.listdir(h.programs_dir))
    assert not [p for p in os.listdir(h.ports_dir)
                if os.readlink(os.path.join(h.ports_dir, p)).startswith("svc.shop.")]
    assert gone(restarted)
    assert not os.path.exists(h.data_dir("shop"))


class Tasks:
    """The Celery app ``tasks`` with a RabbitMQ of its own, deployed once."""

    def __init__(self, h, user):
        self.home, self.user = h, user
        (self.row,) = services(h, "tasks").values()
        self.port = listen_port(1)
        deploy(h, CELERYAPP, "--app", "tasks", "--listen", f"127.0.0.1:{self.port}",
               check=True)
        self.done = os.path.join(h.data_dir("tasks"), "done")

    def ran(self, name, retried=False):
        """Queue the task ``name`` through the web side; the worker runs it."""
        if retried:  # the web side's connection to the broker is new: its first may fail
            wait_until(lambda: front(self.port, f"/enqueue/{name}?seconds=0")[0] == 200, 30,
                       f"the app to queue {name}")
        else:
            assert front(self.port, f"/enqueue/{name}?seconds=0") == (200, f"queued {name}\n")
        wait_until(lambda: os.path.exists(os.path.join(self.done, name)), 60,
                   f"the worker to run {name}")


@pytest.fixture(scope="module")
def tasks(services_home):
    """:class:`Tasks`, its RabbitMQ added with ``sarge service add``."""
    needs("rabbitmq-server", "epmd")
    h, user = services_home
    sarge(h, "service", "add", "tasks", "rabbitmq", check=True, timeout=180)
    yield Tasks(h, user)
    sarge(h, "undeploy", "tasks", "--data", "--yes")  # when the last test did not


@pytest.mark.heavy
def test_rabbitmq_has_the_apps_vhost_user_and_ports_and_a_deploy_does_not_restart_it(tasks):
    """RabbitMQ with a vhost and user of the app's, its AMQP port, Erlang's distribution
    and its epmd on the loopback alone: the Celery worker takes its tasks from it,
    through a deploy that does not restart it."""
    h, row = tasks.home, tasks.row
    assert row["variables"]["CELERY_BROKER_URL"].startswith("amqp://tasks:***@127.0.0.1:")
    for role, taken in row["ports"].items():  # AMQP, Erlang's distribution, its epmd
        held = {li.address for li in listeners(taken)}
        # epmd adds the IPv6 loopback by itself: the loopback still
        assert held == ({"127.0.0.1", "::1"} if role == "epmd" else {"127.0.0.1"}), role
    if tasks.user is not None:
        assert psutil.Process(row["pid"]).username() == tasks.user.name
    tasks.ran("t1")
    deploy(h, CELERYAPP, "--app", "tasks", check=True)
    tasks.ran("t2")
    assert server_pid(h, "svc.tasks.rabbitmq") == row["pid"]


def test_a_rabbitmq_backup_is_its_definitions(tasks, tmp_path):
    """The backup: the vhost, the user (no guest), the worker's queue."""
    out = tmp_path / "definitions.json"
    sarge(tasks.home, "service", "backup", "tasks", "rabbitmq", "-o", str(out), check=True)
    definitions = json.loads(out.read_text())
    assert [v["name"] for v in definitions["vhosts"]] == ["tasks"]
    assert [u["name"] for u in definitions["users"]] == ["tasks"]  # no guest
    assert "celery" in {q["name"] for q in definitions["queues"]}


def test_repair_brings_back_a_rabbitmq_whose_program_file_was_lost(tasks):
    """A service whose program file was lost and that supervisord no longer runs is
    brought back by repair, and the worker takes tasks again."""
    h = tasks.home
    os.unlink(h.program_path("svc.tasks.rabbitmq"))
    subprocess.run([os.path.join(h.path, "bin", "supervisorctl"), "stop",
                    "svc.tasks.rabbitmq:*"], check=True, capture_output=True)
    repaired = sarge(h, "repair", check=True).stdout
    assert "svc.tasks.rabbitmq.conf: missing" in repaired and "started again" in repaired
    wait_until(lambda: services(h, "tasks")["rabbitmq"]["state"] == "running", 60,
               "RabbitMQ to run again")
    wait_until(lambda: KINDS["rabbitmq"].answers(ServiceStore(h).get("tasks", "rabbitmq")),
               60, "RabbitMQ to answer again")
    tasks.ran("t3", retried=True)


def test_a_rabbitmq_removed_with_its_data_kept_and_added_again_has_its_new_password(tasks):
    """Removed with its data kept, added again: the old node's user gets the new
    password, and the app's next deploy its new URL; undeploy --data removes it."""
    h = tasks.home
    sarge(h, "service", "remove", "tasks", "rabbitmq", check=True)
    assert services(h, "tasks") == {}
    assert os.path.isdir(os.path.join(h.service_data_dir("tasks", "rabbitmq"), "mnesia"))
    sarge(h, "service", "add", "tasks", "rabbitmq", check=True, timeout=180)
    deploy(h, CELERYAPP, "--app", "tasks", check=True)  # its new URL to the instances
    tasks.ran("t4")
    done = json.loads(sarge(h, "undeploy", "tasks", "--data", "--yes", "--json",
                            check=True).stdout)
    assert done["services"] == ["svc.tasks.rabbitmq"]
    assert not os.path.exists(h.data_dir("tasks"))


def test_a_server_that_cannot_start_leaves_nothing_and_one_left_running_is_ended(
        services_home):
    """A server that never comes up (its data folder is a file) fails ``add`` with its
    log's last lines and leaves nothing of the service but what was there; a server that
    a supervisord killed with SIGKILL left running (holding its port) is ended by the
    next start's launcher, and the data written before is there."""
    needs("redis-server")
    h, user = services_home
    os.makedirs(h.data_dir("broken"))
    open(os.path.join(h.data_dir("broken"), "redis"), "w").close()
    before = sorted(os.listdir(h.ports_dir)), sorted(os.listdir(h.programs_dir))
    failed = sarge(h, "service", "add", "broken", "redis")
    assert failed.returncode == 1 and failed.stdout == ""
    assert "svc.broken.redis did not start (FATAL)" in failed.stderr
    # the launcher's line, from the server's log
    assert f"cannot prepare {h.data_dir('broken')}/redis: File exists" in failed.stderr
    assert (sorted(os.listdir(h.ports_dir)), sorted(os.listdir(h.programs_dir))) == before
    assert services(h, "broken") == {}
    assert h.supervisor.process("svc.broken.redis:server") is None
    assert os.path.isfile(os.path.join(h.data_dir("broken"), "redis"))  # it was there

    sarge(h, "service", "add", "kept", "redis", check=True)
    service = ServiceStore(h).get("kept", "redis")
    assert redis_ask(service.port, service.password, ["SET", "k", "v"]) == ["OK"]
    left = server_pid(h, service.id)
    stop_supervisord(h, signal.SIGKILL)
    assert psutil.pid_exists(left)  # still holding its port
    start_supervisord(h)
    wait_until(lambda: gone(left), 30, "the launcher to end the Redis left running")
    wait_until(lambda: h.supervisor.process(f"{service.id}:server")["statename"] == "RUNNING"
               and KINDS["redis"].answers(service), 30, "Redis to be started again")
    assert redis_ask(service.port, service.password, ["GET", "k"]) == ["v"]
    undeployed = sarge(h, "undeploy", "kept", check=True)  # without --data: it keeps them
    assert "its data is kept" in undeployed.stderr
    assert services(h, "kept")["redis"]["state"] == "running"
    sarge(h, "service", "remove", "kept", "redis", "--data", "--yes", check=True)
    assert not os.path.exists(h.service_data_dir("kept", "redis"))


def test_memcached_on_a_socket_only_its_apps_user_reaches(services_home, request):
    """``--socket``: Memcached on a unix socket in its data folder, no port taken, no TCP;
    the app's instances get ``unix:PATH``; as root, another local user cannot connect."""
    needs("memcached")
    h, user = services_home
    sarge(h, "service", "add", "sock", "memcached", "--socket", check=True)
    (row,) = services(h, "sock").values()
    path = os.path.join(h.service_data_dir("sock", "memcached"), "memcached.sock")
    assert (row["port"], row["socket"], row["variables"]) == (
        None, path, {"MEMCACHED_SERVERS": f"unix:{path}"})
    assert not [p for p in os.listdir(h.ports_dir)
                if os.readlink(os.path.join(h.ports_dir, p)).startswith("svc.sock.")]
    assert KINDS["memcached"].answers(ServiceStore(h).get("sock", "memcached"))
    proc = psutil.Process(row["pid"])
    assert not [c for c in proc.net_connections("inet")]  # no TCP nor UDP socket at all
    if user is not None:
        assert psutil.Process(row["pid"]).username() == user.name
        other = request.getfixturevalue("second_user")
        probe = ("import socket; s = socket.socket(socket.AF_UNIX); "
                 f"s.connect({path!r}); s.sendall(b'version\\r\\n'); print(s.recv(64))")
        tried = subprocess.run(["runuser", "-u", other.name, "--", "/usr/bin/python3", "-c",
                                probe], capture_output=True, text=True)
        assert tried.returncode != 0 and "PermissionError" in tried.stderr, tried
    sarge(h, "service", "remove", "sock", "memcached", "--data", "--yes", check=True)
    assert not os.path.exists(path)
