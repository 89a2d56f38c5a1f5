"""Backing services, fast: refusals that change nothing, the variables instances get, the
ports and files of a service, and what must leave services alone (the crash watch,
repair's instance records). Real homes in temporary folders, no supervisord (the real
servers are tests/test_services.py's)."""

import configparser
import os
import shutil

import pytest

from sarge import environ
from sarge.errors import ServiceError
from sarge.repair import Repair
from sarge.services import programs
from sarge.services.kinds import KINDS
from sarge.services.manager import Services
from sarge.services.store import Service, ServiceStore, variables
from sarge.supervisord.crashwatch import CrashWatch
from sarge.variables import save_app_config

from .conftest import make_home, run_main, state_files

pytestmark = pytest.mark.fast


def record(app="web", kind="redis", port=5100, **more):
    ports = {"main": port, **({"dist": port + 1, "epmd": port + 2} if kind == "rabbitmq"
                              else {})}
    return Service(app, kind, ports, f"pw-{app}-{kind}", "1.0", "2026-12-02T00:00:00Z",
                   **more)


@pytest.fixture
def h(tmp_path):
    return make_home(tmp_path / "home")


REFUSED = [
    (["add", "Bad!", "redis"], 2, "invalid application name"),
    (["add", "web", "postgres"], 2, "'postgres' is not one of"),
    (["add", "web", "redis", "--memory", "5"], 2, "--memory is Memcached's memory cap"),
    (["add", "web", "redis", "--socket"], 2, "--socket is for Memcached"),
    (["add", "web", "redis", "--version", "0.1"], 1, "installed here is"),
    (["add", "web", "redis"], 7, "supervisord"),
    (["remove", "web", "redis"], 1, "web has no redis"),
    (["remove", "web", "redis", "--data"], 2, "add --yes"),
    (["backup", "web", "memcached", "-o", "out"], 1, "web has no memcached"),
    (["list", "Bad!"], 2, "invalid application name"),
]


@pytest.mark.parametrize("args,status,message", REFUSED, ids=[" ".join(a) for a, _, _ in REFUSED])
def test_a_refused_service_command_says_why_and_changes_nothing(h, args, status, message):
    if "redis" in args and not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    before = state_files(h)
    code, out, err = run_main([h.path, "service", *args])
    assert (code, out) == (status, "")
    assert err.startswith("sarge: ") and message in err and err.count("\n") == 1, err
    assert state_files(h) == before


@pytest.mark.parametrize("kind,package", [("redis", "redis-server"),
                                          ("memcached", "memcached"),
                                          ("rabbitmq", "rabbitmq-server")])
def test_a_missing_server_names_the_package_to_install(h, kind, package):
    before = state_files(h)
    with pytest.raises(ServiceError, match=f"apt-get install {package}`"):
        Services(h, which=lambda name, path=None: None).add("web", kind)
    assert state_files(h) == before


def test_every_instance_gets_its_apps_urls_passwords_in_them(h):
    store = ServiceStore(h)
    for service in (record(kind="redis", port=5100), record(kind="memcached", port=5101),
                    record(kind="rabbitmq", port=5102), record(app="other", port=5110)):
        store.save(service)
    assert variables(h, "web") == {
        "REDIS_URL": "redis://:pw-web-redis@127.0.0.1:5100/0",
        "MEMCACHED_SERVERS": "127.0.0.1:5101",
        "AMQP_URL": "amqp://web:pw-web-rabbitmq@127.0.0.1:5102/web",
        "CELERY_BROKER_URL": "amqp://web:pw-web-rabbitmq@127.0.0.1:5102/web",  # not Redis's
    }
    save_app_config(h.app_config_path("web"), {"REDIS_URL": "redis://elsewhere/", "KEEP": "1"})
    with h.store.lock():
        instance = h.store.create("web")
    env = environ.environment(h, instance, base={"PATH": "/usr/bin"})
    assert env["REDIS_URL"] == "redis://:pw-web-redis@127.0.0.1:5100/0"  # the service wins
    assert (env["KEEP"], env["SARGE_APP"]) == ("1", "web")
    assert variables(h, "nothing") == {}
    assert variables(h, "other") == {"REDIS_URL": "redis://:pw-other-redis@127.0.0.1:5110/0",
                                     "CELERY_BROKER_URL":
                                     "redis://:pw-other-redis@127.0.0.1:5110/1"}


def test_a_services_ports_are_held_while_its_record_is(h):
    ports = h.store.ports()
    taken = [ports.allocate("svc.web.rabbitmq"), ports.allocate("svc.web.rabbitmq/dist")]
    ServiceStore(h).save(record(kind="rabbitmq", port=taken[0]))
    ports.sweep()
    assert sorted(int(p) for p in os.listdir(h.ports_dir)) == taken
    ServiceStore(h).remove(record(kind="rabbitmq"))
    ports.sweep()
    assert os.listdir(h.ports_dir) == []


def test_the_program_holds_no_password_and_the_config_is_private(h):
    service = record()
    program = programs.program_file(h, service)
    parser = configparser.RawConfigParser()
    parser.read_string(program.text)
    assert parser.get("group:svc.web.redis", "programs") == "svc.web.redis_server"
    command = parser.get("program:svc.web.redis_server", "command")
    assert command.endswith(f"sarge.supervisord.launch --service {h.path} svc.web.redis server")
    assert parser.get("program:svc.web.redis_server", "autostart") == "true"
    assert service.password not in program.text
    config = programs.config_file(h, service, None)
    assert f"requirepass {service.password}" in config.text and "appendonly yes" in config.text
    assert config.mode == 0o600  # no user to share it with
    rabbit = programs.program_file(h, record(kind="rabbitmq"))
    epmd, server = (rabbit.text.index(f"[program:svc.web.rabbitmq_{p}]")
                    for p in ("epmd", "server"))
    assert epmd < server  # its own epmd first


def test_the_crash_watch_and_instance_repair_leave_services_alone(h):
    watch = CrashWatch(0, 60, stop=pytest.fail, mark=pytest.fail, log=pytest.fail)
    assert watch.exited({"groupname": "svc.web.redis", "expected": "0"}) is False
    service = record(port=h.store.ports().allocate("svc.web.redis"))
    ServiceStore(h).save(service)
    findings = Repair(h, dry_run=True).run()
    # no instance record wanted for the service's port link: its files are what is missing
    assert sorted((os.path.relpath(f.path, h.path), f.manual) for f in findings) == [
        ("etc/services/svc.web.redis.conf", False),
        ("etc/supervisor.d/svc.web.redis.conf", False)]
    Repair(h).run()
    assert Repair(h, dry_run=True).run() == []


def test_a_backup_needs_a_folder_that_exists_and_a_server_that_answers(h, tmp_path):
    ServiceStore(h).save(record(port=1))  # nothing listens on port 1
    before = state_files(h)
    code, out, err = run_main([h.path, "service", "backup", "web", "redis", "-o",
                               tmp_path / "missing" / "x.rdb"])
    assert (code, out) == (2, "") and "give a file in a folder that exists" in err
    code, out, err = run_main([h.path, "service", "backup", "web", "redis", "-o",
                               tmp_path / "x.rdb"])
    assert (code, out) == (1, "") and "svc.web.redis does not answer on 127.0.0.1:1" in err
    assert state_files(h) == before and not (tmp_path / "x.rdb").exists()


def test_what_each_kind_runs(h):
    def which(name, path=None):
        return f"/usr/lib/rabbitmq/bin/{name}" if name.startswith("rabbitmq") else f"/x/{name}"
    memcached = record(kind="memcached", port=5101, memory=16)
    assert KINDS["memcached"].argv(h, memcached, "server", "sarge-t1", which) == [
        "/x/memcached", "-l", "127.0.0.1", "-p", "5101", "-U", "0", "-m", "16", "-u", "sarge-t1"]
    assert "-m 64" in " ".join(KINDS["memcached"].argv(h, record(kind="memcached"), "server",
                                                       "u", which))
    on_socket = record(kind="memcached", socket="/h/var/data/web/memcached/memcached.sock")
    on_socket.ports.clear()
    assert KINDS["memcached"].argv(h, on_socket, "server", "u", which)[1:5] == [
        "-s", on_socket.socket, "-a", "0700"]  # no -l, no -p: no TCP at all
    assert KINDS["memcached"].variables(on_socket) == {
        "MEMCACHED_SERVERS": f"unix:{on_socket.socket}"}
    assert KINDS["memcached"].roles_of(on_socket) == ()
    redis = record()
    assert KINDS["redis"].argv(h, redis, "server", "u", which) == [
        "/x/redis-server", h.service_config_path("svc.web.redis")]
    rabbit, kind = record(kind="rabbitmq", port=5102), KINDS["rabbitmq"]
    assert kind.argv(h, rabbit, "epmd", "u", which) == [
        "/x/epmd", "-port", "5104", "-address", "127.0.0.1"]
    assert kind.waits_for(rabbit, "server") == (5104,) and kind.waits_for(rabbit, "epmd") == ()
    env = kind.server_env(h, rabbit, "server")
    data = h.service_data_dir("web", "rabbitmq")
    assert (env["HOME"], env["RABBITMQ_NODENAME"], env["RABBITMQ_NODE_PORT"],
            env["RABBITMQ_DIST_PORT"], env["ERL_EPMD_PORT"]) == (
        data, "sarge-web@localhost", "5102", "5103", "5104")
    assert env["RABBITMQ_MNESIA_BASE"].startswith(data + "/")
    config = kind.config(h, rabbit)
    assert "listeners.tcp.default = 127.0.0.1:5102" in config
    assert "default_user = web" in config and "default_pass = pw-web-rabbitmq" in config
    with pytest.raises(ServiceError, match="Debian's wrapper"):
        kind.executable("server", lambda name, path=None: f"/usr/sbin/{name}")
