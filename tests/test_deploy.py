"""Rolling deploys with real nginx, real gunicorn in the app's virtualenv, real HTTP.

Each branch of deploy, route and rollback is tested in test_deploy_fast.py with fakes;
here, the real thing. Deploys that fail or are refused share one home for the module
(deployed once), which each must leave as it was; the kill-at-any-step cases share
another, each starting from what the one before left (a current and a kept version)."""

import json
import os
import subprocess
import tarfile
import time

import psutil
import pytest

from .conftest import (
    WEBAPP,
    Clients,
    deploy,
    edit_settings,
    front,
    kill_home,
    listen_port,
    make_home,
    quiet_snapshot,
    run_main,
    sarge,
    start_supervisord,
    state_files,
    wait_for_state,
    wait_gone,
    wait_until,
)
from .faults import deploy_killed_at


def instances(h):
    return json.loads(sarge(h, "list", "--json", check=True).stdout)["instances"]


def current(h, app="web"):
    (row,) = [i for i in instances(h) if i["application_name"] == app and i["role"] == "current"]
    return row["id"]


def first_deploy(h, source, port=None, *args):
    port = port or listen_port()
    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{port}", *args,
                    check=True)
    return result.stdout.strip(), port


def test_deploy_a_folder_then_a_new_version(running, webapp):
    result = deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}")
    assert result.returncode == 0, result.stderr
    first = result.stdout.strip()
    assert result.stdout == first + "\n"  # the id alone on stdout
    for step in ("new instance", "unpack", "environment", "start", "health check", "switch",
                 "drain", "clean up"):
        assert step in result.stderr, step
    assert front(listen_port()) == (200, f"version 1 from {first}\n")
    assert current(running) == first

    (webapp / "VERSION").write_text("2")
    result = deploy(running, webapp, "--app", "web", check=True)  # --listen is remembered
    second = result.stdout.strip()
    assert "reused" in result.stderr  # same requirements: no install
    assert front(listen_port()) == (200, f"version 2 from {second}\n")
    rows = {i["id"]: i for i in instances(running)}
    assert rows[second]["role"] == "current" and rows[second]["state"] in ("running", "starting")
    assert rows[first]["role"] == "previous" and rows[first]["state"] == "stopped"

    # a third deploy removes the oldest (keep = 1 previous by default)
    third = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    assert sorted(rows) != sorted(i["id"] for i in instances(running))
    assert {i["id"] for i in instances(running)} == {second, third}
    assert not os.path.exists(running.instance_dir(first))


def test_deploy_a_tar_gz_archive(running, webapp, tmp_path):
    archive = tmp_path / "web.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in os.listdir(webapp):
            tar.add(webapp / name, arcname=name)
    instance_id, port = first_deploy(running, archive)
    assert front(port)[1] == f"version 1 from {instance_id}\n"


def test_procfile_worker_and_release(running, webapp):
    (webapp / "Procfile").write_text(
        "web: gunicorn app:app --bind 127.0.0.1:$PORT\n"
        "worker: python -c 'import time, os; open(\"worker-ran\", \"w\"); time.sleep(3600)'\n"
        "release: echo released > \"$SARGE_DATA_DIR/release-ran\" && test -z \"$PORT\" || true\n"
    )
    instance_id, port = first_deploy(running, webapp)
    with open(os.path.join(running.data_dir("web"), "release-ran")) as f:
        assert f.read() == "released\n"
    status = subprocess.run([os.path.join(running.path, "bin", "supervisorctl"), "status"],
                            capture_output=True, text=True).stdout
    assert f"{instance_id}:web" in status and f"{instance_id}:worker" in status
    assert "release" not in status  # a one-off step, not a program
    wait_until(lambda: os.path.exists(os.path.join(running.instance_dir(instance_id),
                                                   "worker-ran")), 10, "the worker to run")
    result = subprocess.run([os.path.join(running.path, "bin", "supervisorctl"), "restart",
                             f"{instance_id}:*"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # a plain restart: the app is down (nginx answers 502) while it starts
    wait_until(lambda: front(port)[0] == 200, 15, "the restarted app to answer")


def test_rollback_and_route(running, webapp):
    first, port = first_deploy(running, webapp)
    (webapp / "VERSION").write_text("2")
    second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    result = sarge(running, "rollback", "web")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == first
    assert front(port) == (200, f"version 1 from {first}\n")
    rows = {i["id"]: i for i in instances(running)}
    assert rows[first]["role"] == "current" and rows[second]["role"] == "previous"
    assert rows[second]["state"] == "stopped"

    # route to the stopped one is refused; once started, it is accepted
    result = sarge(running, "route", "web", second)
    assert result.returncode == 1 and "not running" in result.stderr
    sarge(running, "start", second, check=True)
    result = sarge(running, "route", "web", second)
    assert result.returncode == 0, result.stderr
    assert front(port) == (200, f"version 2 from {second}\n")
    assert current(running) == second


def test_config_with_awkward_values_and_data_that_survives(running, webapp):
    first, port = first_deploy(running, webapp)
    values = ["A=100% $HOME", "B=it's \"q\"", "C=a=b", "D=  spaced  ", "E=héllo ☃", "F="]
    result = sarge(running, "config", "web", *values)
    assert result.returncode == 0, result.stderr
    assert "takes effect with the next deploy" in result.stderr
    assert oct(os.stat(running.app_config_path("web")).st_mode & 0o777) == "0o600"
    shown = json.loads(sarge(running, "config", "web", "--json", check=True).stdout)
    assert shown == dict(v.split("=", 1) for v in values)
    before = json.loads(front(port, "/env")[1])
    assert "A" not in before  # not before a deploy
    with open(os.path.join(running.data_dir("web"), "kept"), "w") as f:
        f.write("data")
    result = sarge(running, "config", "web", "--unset", "F", "--deploy", timeout=120)
    assert result.returncode == 0, result.stderr
    status, body = front(port, "/env")
    assert status == 200, (body, sarge(running, "list").stdout, result.stderr)
    env = json.loads(body)
    for value in values[:-1]:
        key, expected = value.split("=", 1)
        assert env[key] == expected
    assert "F" not in env
    assert env["SARGE_INSTANCE"] != first
    with open(os.path.join(env["SARGE_DATA_DIR"], "kept")) as f:
        assert f.read() == "data"
    for path in (running.program_path(env["SARGE_INSTANCE"]), running.nginx_conf):
        assert "héllo" not in open(path).read()


def test_two_gunicorn_instances_side_by_side_keep_their_control_sockets(running, webapp):
    first, port = first_deploy(running, webapp)
    sarge(running, "start", first)
    (webapp / "VERSION").write_text("2")
    second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    sarge(running, "start", first, check=True)  # both run now
    sockets = [os.path.join(running.runtime_dir(i), "gunicorn.ctl") for i in (first, second)]
    wait_until(lambda: all(os.path.exists(s) for s in sockets), 10,
               f"gunicorn's control sockets {sockets}")
    sarge(running, "stop", first, check=True)
    assert os.path.exists(sockets[1])  # stopping one did not remove the other's socket


def test_pip_is_used_when_asked(running, webapp):
    edit_settings(running, {'installer = "auto"': 'installer = "pip"'})
    instance_id, port = first_deploy(running, webapp)
    with open(running.log_path(instance_id)) as f:
        log = f.read()
    assert "-m pip install" in log and "uv pip" not in log
    assert front(port)[0] == 200


def test_two_deploys_of_one_app_at_once(running, webapp):
    first, port = first_deploy(running, webapp)
    # a release that holds the first deploy (and so its lock) until the second is refused
    go = os.path.join(running.data_dir("web"), "go")
    (webapp / "Procfile").write_text(
        "web: gunicorn app:app --bind 127.0.0.1:$PORT\n"
        f"release: for i in $(seq 600); do [ -e {go} ] && break; sleep 0.1; done\n")
    slow = subprocess.Popen([os.path.join(running.path, "bin", "sarge"), "deploy", str(webapp),
                             "--app", "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: in_release(running, first), 60, "the first deploy's release")
        result = deploy(running, webapp, "--app", "web")
        assert result.returncode == 1
        assert "another deploy, route or rollback of web is running" in result.stderr
    finally:
        open(go, "w").close()
        out, err = slow.communicate(timeout=120)
    assert slow.returncode == 0, err


def in_release(h, *old):
    """True once a deploy's new instance (one not in ``old``) has started its release
    command (logged as it starts), and so holds the app's lock."""
    new = [r["id"] for r in instances(h) if r["id"] not in old]
    if not new:
        return False
    try:
        with open(h.log_path(new[0])) as f:
            return "$ /bin/sh -c " in f.read()
    except FileNotFoundError:
        return False


def test_nginx_killed_comes_back(running, webapp):
    instance_id, port = first_deploy(running, webapp)
    master = running.supervisor.process("nginx")["pid"]
    # nginx listens (which the deploy waits for) before it forks its workers
    workers = wait_until(lambda: psutil.Process(master).children(), 10, "nginx's workers")
    psutil.Process(master).kill()  # its workers live on, holding the port

    def restarted():
        info = running.supervisor.process("nginx")
        return info["statename"] == "RUNNING" and info["pid"] != master and front(port)[0] == 200

    wait_until(restarted, 15, lambda: f"nginx to be back: {running.supervisor.process('nginx')}",
               interval=0.2, ignore=OSError)
    alive = wait_gone(workers, 10)
    assert alive == []  # the restarted nginx ended the orphans of the killed one


def test_missing_nginx_says_how_to_install_it(running, webapp):
    edit_settings(running, {'nginx = "nginx"': 'nginx = "/nonexistent/nginx"'})
    result = deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}")
    assert result.returncode == 1
    assert "nginx is not installed" in result.stderr and "apt-get install" in result.stderr
    assert instances(running) == []


class Load(Clients):
    """Concurrent GET and POST requests through the front-end, each on a fresh connection
    (what a correct client sees), counting every failure until stopped."""

    def __init__(self, port, clients=16):
        self.port = port
        self.ok = 0
        self.failures = []
        super().__init__(clients)

    def client(self, n):
        i = 0
        while not self.stop.is_set():
            i += 1
            method, body = ("POST", b"x" * 1000) if (n + i) % 2 else ("GET", None)
            try:
                status, text = front(self.port, "/slow" if i % 10 == 0 else "/", method, body)
                ok = status == 200 and (text.startswith("version") or text == "posted 1000\n")
                error = None if ok else f"{method} {status} {text[:80]!r}"
            except OSError as exc:
                error = f"{method} {type(exc).__name__}: {exc}"
            with self.lock:
                if error:
                    self.failures.append(error)
                else:
                    self.ok += 1



@pytest.mark.heavy
def test_no_request_fails_during_deploys(running, webapp):
    first, port = first_deploy(running, webapp)
    with Load(port) as load:
        time.sleep(0.5)
        for version in range(2, 6):
            (webapp / "VERSION").write_text(str(version))
            deploy(running, webapp, "--app", "web", check=True)
            time.sleep(0.3)
        assert sarge(running, "rollback", "web").returncode == 0
        time.sleep(0.5)
    print(f"{load.ok} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:10]
    assert load.ok > 200, load.ok
    assert front(port)[1].startswith("version 4 ")


def test_a_killed_deploy_leaves_the_old_version_serving_and_the_next_deploy_cleans_up(
        running, webapp):
    import signal

    first, port = first_deploy(running, webapp)
    (webapp / "Procfile").write_text(
        "web: gunicorn app:app --bind 127.0.0.1:$PORT\nrelease: sleep 30\n")
    killed = subprocess.Popen([os.path.join(running.path, "bin", "sarge"), "deploy",
                               str(webapp), "--app", "web"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until(lambda: in_release(running, first), 30, "the deploy to be in its release")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(30)
    assert front(port) == (200, f"version 1 from {first}\n")
    rows = instances(running)
    assert len(rows) == 2 and current(running) == first
    leftover = next(r["id"] for r in rows if r["id"] != first)

    (webapp / "Procfile").write_text("web: gunicorn app:app --bind 127.0.0.1:$PORT\n")
    (webapp / "VERSION").write_text("2")
    second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    assert front(port) == (200, f"version 2 from {second}\n")
    assert {r["id"] for r in instances(running)} == {first, second}
    assert not os.path.exists(running.instance_dir(leftover))


def test_system_nginx_mode(running, webapp, tmp_path):
    """sarge writes etc/nginx/sites.conf for the machine's nginx and runs its commands."""
    import shutil

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    system = tmp_path / "system-nginx"
    system.mkdir()
    conf = system / "nginx.conf"
    conf.write_text(f"""
pid {system}/nginx.pid;
error_log {system}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {system}/body;
    proxy_temp_path {system}/proxy;
    fastcgi_temp_path {system}/fastcgi;
    uwsgi_temp_path {system}/uwsgi;
    scgi_temp_path {system}/scgi;
    include {running.nginx_sites};
}}
""")
    args = f"-c {conf} -p {system}/ -e {system}/error.log"
    os.makedirs(os.path.dirname(running.nginx_sites), exist_ok=True)
    open(running.nginx_sites, "w").close()
    subprocess.run([nginx, *args.split()], check=True)
    try:
        edit_settings(running, {
            'mode = "nginx"': 'mode = "system"',
            'test_command = "nginx -t"': f'test_command = "{nginx} -t -q {args}"',
            'reload_command = "nginx -s reload"': f'reload_command = "{nginx} -s reload {args}"',
        })
        instance_id, port = first_deploy(running, webapp)
        assert running.supervisor.process("nginx") is None  # sarge runs no nginx of its own
        assert f"127.0.0.1:{running.get(instance_id).port}" in open(running.nginx_sites).read()
        wait_until(lambda: front(port) == (200, f"version 1 from {instance_id}\n"), 10,
                   "the machine's nginx to serve the app", ignore=OSError)
        (webapp / "VERSION").write_text("2")
        second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
        assert front(port) == (200, f"version 2 from {second}\n")
        # a failing test command: the previous file is put back, the old version serves
        before = open(running.nginx_sites).read()
        edit_settings(running, {f'test_command = "{nginx} -t -q {args}"':
                                'test_command = "false"'})
        result = deploy(running, webapp, "--app", "web")
        assert result.returncode == 1 and "test_command" in result.stderr
        assert open(running.nginx_sites).read() == before
        assert front(port) == (200, f"version 2 from {second}\n")
    finally:
        subprocess.run([nginx, *args.split(), "-s", "stop"])


def test_unused_environments_are_removed(running, webapp):
    def environments():
        return sorted(n for n in os.listdir(running.envs_dir) if not n.startswith("."))

    first_deploy(running, webapp)
    (env_a,) = environments()
    (webapp / "requirements.txt").write_text("gunicorn\n# another set of requirements\n")
    deploy(running, webapp, "--app", "web", check=True)
    assert len(environments()) == 2  # the previous instance (kept) still uses the first
    deploy(running, webapp, "--app", "web", check=True)
    remaining = environments()
    assert len(remaining) == 1 and env_a not in remaining


def test_pip_args_reach_the_installer(running, webapp, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()  # an empty wheel folder and no index: nothing can be installed
    edit_settings(running, {"pip_args = []": f'pip_args = ["--no-index", "--find-links", '
                                             f'"{wheels}"]'})
    result = deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}")
    assert result.returncode == 1
    assert "deploy failed at step 'environment'" in result.stderr
    assert instances(running) == []


def test_status_and_logs_cover_every_process_type(running, webapp):
    (webapp / "Procfile").write_text(
        "web: gunicorn app:app --bind 127.0.0.1:$PORT --workers 2\n"
        "worker: python -u -c 'print(\"worker up\"); import time; time.sleep(3600)'\n")
    instance_id, port = first_deploy(running, webapp)
    status = json.loads(sarge(running, "status", instance_id, "--json", check=True).stdout)
    trees = []
    for process in ("web", "worker"):
        root = psutil.Process(running.supervisor.process(f"{instance_id}:{process}")["pid"])
        trees += [root] + root.children(recursive=True)
    # gunicorn's master and 2 workers, the worker (and the shells that run them)
    assert len(trees) >= 4 and status["processes"] == len(trees)
    wait_until(lambda: "worker up" in sarge(running, "logs", instance_id, "-p", "worker").stdout,
               10, "the worker's line in its log")
    result = sarge(running, "logs", instance_id, "-p", "nope")
    assert result.returncode == 2 and "has no process 'nope'" in result.stderr


def test_two_apps_deploy_at_once(running, webapp, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(webapp, other)
    (other / "VERSION").write_text("api")
    procs = [subprocess.Popen([os.path.join(running.path, "bin", "sarge"), "deploy", str(src),
                               "--app", app, "--listen", f"127.0.0.1:{listen_port(n)}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n, (app, src) in enumerate([("web", webapp), ("api", other)])]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(code == 0 for _, _, code in results), results
    web, api = (out.strip() for out, _, _ in results)
    assert front(listen_port(0)) == (200, f"version 1 from {web}\n")
    assert front(listen_port(1)) == (200, f"version api from {api}\n")
    assert {(r["application_name"], r["role"]) for r in instances(running)} == {
        ("web", "current"), ("api", "current")}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
@pytest.mark.parametrize("step", ["environment", "unpack"])
def test_a_full_disk_during_install_fails_cleanly(tmp_path_factory, webapp, step):
    """The disk fills up while the new version installs its requirements, or while it is
    unpacked (its files fit the free space byte for byte, but each small file takes a
    whole page of the tmpfs, so the disk fills half-way through the copy)."""
    from .conftest import kill_home, make_home, start_supervisord

    mount = tmp_path_factory.mktemp("full")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], check=True)
    h = None
    try:
        h = make_home(mount / "home", offset=300)
        start_supervisord(h)
        port = listen_port(50)
        first = deploy(h, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}")
        assert first.returncode == 0, first.stderr
        first = first.stdout.strip()
        # leave about 4 MB free: less than a pip-seeded virtualenv needs, less than
        # 2,000 files of a page each
        st = os.statvfs(mount)
        filler = mount / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 4 * 1024 * 1024))
        (webapp / "VERSION").write_text("2")
        if step == "environment":
            edit_settings(h, {'installer = "auto"': 'installer = "pip"'})
            (webapp / "requirements.txt").write_text("gunicorn\nflask\n")
        else:
            (webapp / "assets").mkdir()
            for n in range(2000):
                (webapp / "assets" / f"{n}.txt").write_text("x")
        before = os.statvfs(mount).f_bavail
        result = deploy(h, webapp, "--app", "web")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"deploy failed at step '{step}'" in result.stderr, result.stderr
        if step == "unpack":  # not refused beforehand: the copy itself ran out of room
            assert "No space left on device" in result.stderr, result.stderr
            assert len(result.stderr) < 4000  # the first failure, not all of them
        assert front(port) == (200, f"version 1 from {first}\n")
        assert [i["id"] for i in instances(h)] == [first]
        assert len([n for n in os.listdir(h.envs_dir) if not n.startswith(".")]) == 1
        assert os.statvfs(mount).f_bavail >= before - 64  # the partial files are gone
    finally:
        if h is not None:
            kill_home(h)
        subprocess.run(["umount", "-l", str(mount)])


def test_destroy_refuses_the_current_instance_and_forgets_a_previous_one(running, webapp):
    first, port = first_deploy(running, webapp)
    second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    result = sarge(running, "destroy", second)
    assert result.returncode == 1 and "front-end routes to" in result.stderr
    assert front(port)[1] == f"version 1 from {second}\n"
    sarge(running, "destroy", first, check=True)
    assert [r["id"] for r in instances(running)] == [second]
    result = sarge(running, "rollback", "web")
    assert result.returncode == 1 and "no previous instance" in result.stderr


def test_a_failed_rollback_leaves_things_as_they_were(running, webapp):
    first, port = first_deploy(running, webapp, None, "--check", "/health", "--timeout", "3")
    second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    with open(os.path.join(running.instance_dir(first), "HEALTH"), "w") as f:
        f.write("500")  # the previous version has gone bad since
    result = sarge(running, "rollback", "web")
    assert result.returncode == 1 and "rollback of web" in result.stderr
    assert front(port)[1] == f"version 1 from {second}\n"
    assert running.supervisor.process(first + ":web")["statename"] == "STOPPED"
    assert "autostart = false" in open(running.program_path(first)).read()
    assert current(running) == second


def test_a_config_that_fails_its_deploy_is_not_kept(running, webapp):
    first, port = first_deploy(running, webapp, None, "--check", "/health", "--timeout", "3")
    sarge(running, "config", "web", "GOOD=1", check=True)
    result = sarge(running, "config", "web", "FAIL_HEALTH=1", "--deploy", timeout=120)
    assert result.returncode == 1 and "deploy failed at step 'health check'" in result.stderr
    assert json.loads(sarge(running, "config", "web", "--json").stdout) == {"GOOD": "1"}
    assert front(port)[1] == f"version 1 from {first}\n"
    result = sarge(running, "config", "web", "A=2", "--deploy", timeout=120)
    assert result.returncode == 0, result.stderr
    env = json.loads(front(port, "/env")[1])
    assert env["A"] == "2" and env["GOOD"] == "1" and "FAIL_HEALTH" not in env


@pytest.mark.fast
def test_rollback_and_route_on_a_folder_that_is_not_a_home(tmp_path):
    for args in (["rollback", "web"], ["route", "web", "web-abcdef"], ["config", "web"]):
        code, out, err = run_main([tmp_path / "no", *args])
        assert code == 1 and out == "" and f"sarge {tmp_path / 'no'} init" in err, err
        assert "Traceback" not in err and err.count("\n") == 1
        assert not (tmp_path / "no").exists()


def test_each_deploy_keeps_its_configuration_and_rollback_brings_it_back(running, webapp):
    sarge(running, "config", "web", "COLOUR=blue", check=True)
    first, port = first_deploy(running, webapp)
    sarge(running, "config", "web", "COLOUR=green", check=True)
    sarge(running, "restart", first, check=True)  # a restart keeps what the deploy gave
    env = wait_until(lambda: json.loads(front(port, "/env")[1]), 15,  # 502 while it starts
                     "the restarted app's environment", ignore=(OSError, ValueError))
    assert env["COLOUR"] == "blue"
    second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    assert json.loads(front(port, "/env")[1])["COLOUR"] == "green"
    assert sarge(running, "rollback", "web").stdout.strip() == first
    assert json.loads(front(port, "/env")[1])["COLOUR"] == "blue"
    assert oct(os.stat(running.instance_config_path(second)).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("moment", ["release", "health check"])
def test_supervisord_killed_during_a_deploy(running, webapp, moment):
    """supervisord SIGKILLed while a deploy runs: the orphaned nginx and app keep serving,
    the deploy fails in a few lines naming supervisord, `bin/supervisord` brings the old
    version back, and the next deploy completes and leaves nothing behind."""
    import signal

    first, port = first_deploy(running, webapp)
    if moment == "release":
        procfile = "web: gunicorn app:app --bind 127.0.0.1:$PORT\nrelease: sleep 3\n"
    else:  # an app that answers its health check only after 3 s
        procfile = "web: sleep 3 && exec gunicorn app:app --bind 127.0.0.1:$PORT\n"
    (webapp / "Procfile").write_text(procfile)
    (webapp / "VERSION").write_text("2")
    deploying = subprocess.Popen([os.path.join(running.path, "bin", "sarge"), "deploy",
                                  str(webapp), "--app", "web"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)

    def in_step():
        new = [r["id"] for r in instances(running) if r["id"] != first]
        if not new:
            return False
        if moment == "release":  # the release command is logged as it starts
            path, line = running.log_path(new[0]), "$ /bin/sh -c exec sleep 3"
        else:  # the start step logs the start; the health check follows
            path, line = os.path.join(running.log_dir, "sarge.log"), f"start {new[0]}"
        return os.path.exists(path) and line in open(path).read()

    wait_until(in_step, 60, f"the deploy to be in its {moment} step")
    psutil.Process(int(open(running.pidfile).read())).send_signal(signal.SIGKILL)
    assert front(port) == (200, f"version 1 from {first}\n")  # orphans serve on
    out, err = deploying.communicate(timeout=120)
    assert deploying.returncode == 1 and "Traceback" not in err
    assert "supervisord is not running" in err and "keeps serving" in err
    assert front(port) == (200, f"version 1 from {first}\n")

    start_supervisord(running)
    # nginx and the old version come back under the new supervisord
    wait_until(lambda: front(port, timeout=2) == (200, f"version 1 from {first}\n"), 30,
               "the old version to serve again", interval=0.2, ignore=OSError)
    assert current(running) == first

    (webapp / "Procfile").write_text("web: gunicorn app:app --bind 127.0.0.1:$PORT\n")
    second = deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    assert front(port) == (200, f"version 2 from {second}\n")
    assert {r["id"] for r in instances(running)} == {first, second}
    leftovers = [n for n in os.listdir(running.path) if n.startswith("web-")]
    assert sorted(leftovers) == sorted([first, second])


# -- failed and refused deploys, on one home for the module ------------------------------

def deploy_state(h):
    """What a failed or refused deploy must leave as it was: the files of etc/ (the
    settings, programs, nginx's configuration, the apps' variables) and of var/apps,
    var/instances and var/ports (the apps' states, the records, the port links), each
    instance's state in supervisord, the environments and the home's top folder."""
    return {
        "files": state_files(h, under=("etc", "var/apps", "var/instances", "var/ports")),
        "states": {i.id: h.supervisor.process(i.id + ":web")["statename"]
                   for i in h.instances()},
        "envs": sorted(n for n in os.listdir(h.envs_dir) if not n.startswith(".")),
        "top": sorted(os.listdir(h.path)),
    }


@pytest.fixture(scope="module")
def deployed_home(tmp_path_factory):
    """A home serving tests/apps/webapp, deployed once for the module: ``serving`` (its
    instance), ``port`` (its front-end), ``baseline`` (:func:`deploy_state`)."""
    import shutil

    h = make_home(tmp_path_factory.mktemp("h") / "home", offset=200)
    start_supervisord(h)
    try:
        source = tmp_path_factory.mktemp("src") / "webapp"
        shutil.copytree(WEBAPP, source)
        h.port = listen_port(30)
        h.serving = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{h.port}",
                           check=True).stdout.strip()
        # healthy is not yet RUNNING (startsecs): the baseline must not catch it STARTING
        wait_for_state(h, h.serving, "running")
        h.baseline = deploy_state(h)
        yield h
    finally:
        kill_home(h)


@pytest.fixture
def serving(deployed_home):
    """The module's home, checked to be as it was deployed (a case that changed it fails,
    and the next case says so instead of passing on a changed home); checked again, and
    the app still serving, by :func:`assert_unchanged` at the end of each case."""
    assert deploy_state(deployed_home) == deployed_home.baseline, (
        "an earlier case left the module's home changed")
    return deployed_home


def assert_unchanged(h):
    assert front(h.port) == (200, f"version 1 from {h.serving}\n")
    assert deploy_state(h) == h.baseline


def assert_failed_cleanly(h, result, step):
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert f"deploy failed at step '{step}'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert_unchanged(h)  # no half-made instance left behind, the old version serving


serving_tests = pytest.mark.xdist_group("deploy_serving")  # one worker, one home


@serving_tests
@pytest.mark.parametrize("breakage, step, timeout", [
    ({"Procfile": "web: gunicorn app:app --bind 127.0.0.1:$PORT\nrelease: exit 3\n"},
     "release", 20),
    ({"HEALTH": "500"}, "health check", 5),  # never healthy: it waits out the timeout
    ({"Procfile": "web: python -c 'import sys; sys.exit(4)'\n"}, "health check", 20),
    ({"requirements.txt": "gunicorn\nthere-is-no-such-package-sarge-test==1.0\n"},
     "environment", 20),
    ({"Procfile": "worker: sleep 100\n"}, "environment", 20),
    ({"sarge-app.toml": "[processes.web]\nstop_timeout = 0\n"}, "environment", 20),
])
def test_a_bad_version_is_refused_and_the_old_one_keeps_serving(serving, webapp, breakage,
                                                                 step, timeout):
    for name, text in breakage.items():
        (webapp / name).write_text(text)
    (webapp / "VERSION").write_text("2")
    started = time.monotonic()
    result = deploy(serving, webapp, "--app", "web", "--timeout", str(timeout), "--check",
                    "/health")
    assert_failed_cleanly(serving, result, step)
    if "sys.exit(4)" in breakage.get("Procfile", ""):
        assert time.monotonic() - started < 15  # a crash fails fast, not after the timeout
        assert "exited" in result.stderr
    if "sarge-app.toml" in breakage:
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("sarge:")]
        assert "sarge-app.toml: processes.web.stop_timeout must be a whole number" in line


@serving_tests
def test_health_timeout(serving, webapp):
    (webapp / "HEALTH").write_text("503")
    started = time.monotonic()
    # 5 s: gunicorn answers (503) within it even on a busy machine, and it is waited out
    result = deploy(serving, webapp, "--app", "web", "--check", "/health", "--timeout", "5")
    assert time.monotonic() - started < 15
    assert_failed_cleanly(serving, result, "health check")
    assert "not healthy after 5s" in result.stderr and "HTTP 503" in result.stderr


@serving_tests
def test_a_config_nginx_refuses_is_never_loaded(serving):
    from sarge.deploy import Deployer
    from sarge.errors import FrontendError

    before = open(serving.nginx_conf).read()
    bad = [{"app": "web", "instance": serving.serving, "listen": "no-such-host.invalid:1",
            "port": 1}]
    with pytest.raises(FrontendError, match="nginx refused the new configuration"):
        Deployer(serving).frontend.apply(bad)
    assert open(serving.nginx_conf).read() == before
    assert_unchanged(serving)


@serving_tests
@pytest.mark.parametrize("args, message", [
    (["--listen", "nope"], "invalid --listen"),
    (["--listen", "127.0.0.1:99999"], "invalid --listen"),
    (["--listen", "127.0.0.1:1; evil"], "invalid --listen"),
    (["--check", "health"], "invalid --check"),
    (["--check", "/a b"], "invalid --check"),
    (["--check", "/x\n"], "invalid --check"),
    (["--timeout", "0"], "invalid --timeout"),
    ([], "the first deploy of api needs --listen"),
])
def test_bad_deploy_options_change_nothing(serving, webapp, args, message):
    before = quiet_snapshot(serving)
    result = deploy(serving, webapp, "--app", "api", *args)  # an app not deployed yet
    assert result.returncode != 0
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert quiet_snapshot(serving) == before
    assert_unchanged(serving)


@serving_tests
def test_bad_sources_change_nothing(serving, tmp_path):
    (tmp_path / "notes.txt").write_text("not an archive")
    (tmp_path / "fake.tar.gz").write_text("not really gzip")
    cases = {
        str(tmp_path / "missing"): "no such source",
        str(tmp_path / "notes.txt"): "neither a directory nor",
        str(tmp_path / "fake.tar.gz"): "not a readable tar archive",
    }
    for source, message in cases.items():
        result = deploy(serving, source, "--app", "web")
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert_unchanged(serving)


@serving_tests
def test_a_listen_port_used_by_another_app_is_refused(serving, webapp):
    result = deploy(serving, webapp, "--app", "api", "--listen", f"127.0.0.1:{serving.port}")
    assert result.returncode == 2  # a usage error
    assert "already the front-end of the app web" in result.stderr
    assert_unchanged(serving)


@serving_tests
def test_a_listen_port_in_the_instances_range_is_refused(serving, webapp):
    port = serving.settings.port_first + 5
    result = deploy(serving, webapp, "--app", "api", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert "in the range the home gives its instances" in result.stderr
    assert_unchanged(serving)


# -- sarge killed at any step: one home, each case from what the one before left ---------------

KILL_POINTS = ["unpack", "environment", "environment:install", "release", "start",
               "health check", "switch", "switch:reload", "drain", "stop old", "clean up"]
KILL_PROCFILE = "web: gunicorn app:app --bind 127.0.0.1:$PORT\nrelease: true\n"


@pytest.fixture(scope="module")
def killable_home(tmp_path_factory):
    """A home with a current and a kept version of the app (two deploys); ``expected``:
    what its front-end answers. Each case leaves it so again (its last deploy's)."""
    import shutil

    h = make_home(tmp_path_factory.mktemp("h") / "home", offset=600)
    start_supervisord(h)
    try:
        h.source = tmp_path_factory.mktemp("src") / "webapp"
        shutil.copytree(WEBAPP, h.source)
        (h.source / "Procfile").write_text(KILL_PROCFILE)
        h.port = listen_port(31)
        deploy(h, h.source, "--app", "web", "--listen", f"127.0.0.1:{h.port}", check=True)
        (h.source / "VERSION").write_text("2")
        second = deploy(h, h.source, "--app", "web", check=True).stdout.strip()
        h.expected = f"version 2 from {second}\n"
        yield h
    finally:
        kill_home(h)


@pytest.mark.xdist_group("deploy_killed")
@pytest.mark.parametrize("point", KILL_POINTS)
def test_sarge_killed_at_any_step_of_a_deploy(killable_home, point):
    h, webapp = killable_home, killable_home.source
    rows = instances(h)
    assert {r["role"] for r in rows} == {"current", "previous"} and len(rows) == 2, (
        "an earlier case left the module's home without a current and a kept version", rows)
    assert front(h.port) == (200, h.expected)
    old = h.expected.split(" from ")[0]
    (webapp / "VERSION").write_text(f"{point} killed")
    # changed requirements: a new environment, which the killed deploy may leave half-made
    (webapp / "requirements.txt").write_text(f"gunicorn\n# changed for {point}\n")
    killed = deploy_killed_at(h, webapp, "web", point)
    assert killed.returncode == -9, killed.stderr
    # the front-end serves the old or the new version, never nothing; list works
    status, text = front(h.port)
    assert status == 200 and text.startswith((old + " ", f"version {point} killed ")), text
    assert sarge(h, "list").returncode == 0
    # the next deploy succeeds and leaves no leftover: current + one kept
    (webapp / "VERSION").write_text(f"{point} then deployed")
    third = deploy(h, webapp, "--app", "web", check=True).stdout.strip()
    h.expected = f"version {point} then deployed from {third}\n"
    assert front(h.port) == (200, h.expected)
    rows = instances(h)
    assert len(rows) == 2, rows
    assert {r["role"] for r in rows} == {"current", "previous"}
    folders = ["bin", "etc", "var"] + [r["id"] for r in rows]
    assert sorted(os.listdir(h.path)) == sorted(folders)
    assert len([n for n in os.listdir(h.envs_dir) if not n.startswith(".")]) <= 2
