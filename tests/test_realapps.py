"""Real apps deployed unchanged: the Flask tutorial's flaskr (tests/apps/flaskr) and a
Django project as startproject makes it (tests/apps/djangosite), with real supervisord,
gunicorn, nginx, Flask and Django, installed from .cache/wheels (no network).

As root (CI), each runs as an app user of its own and nginx's workers as nobody, as a
server would: the build writes into the code as that user, the app writes only into its
declared folders, nginx reads only the static ones."""

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from .conftest import (
    HERE,
    OFFLINE,
    Clients,
    deploy,
    edit_settings,
    front,
    listen_port,
    name_user,
    needs_wheels,
    sarge,
    wait_until,
)

FLASKR = os.path.join(HERE, "apps", "flaskr")
DJANGOSITE = os.path.join(HERE, "apps", "djangosite")
ASGIAPP = os.path.join(HERE, "apps", "asgiapp")


@pytest.fixture
def app_home(request):
    """A running home that deploys from .cache/wheels; as root, its apps run as a user of
    their own (and nginx's workers as nobody): (home, that user or None)."""
    needs_wheels()
    if os.geteuid() == 0 and shutil.which("useradd"):
        h = request.getfixturevalue("open_home")
        user = request.getfixturevalue("throwaway_user")
        name_user(h, user.name)
        edit_settings(h, OFFLINE)  # name_user set a Python the user can run
        return h, user
    h = request.getfixturevalue("running")
    edit_settings(h, OFFLINE)
    return h, None


#: The Host a front-end port is asked with, where not 127.0.0.1:PORT (an app with a
#: domain and a strict ALLOWED_HOSTS answers only to its own).
HOSTS = {}


def request(port, path, method="GET", form=None):
    """One request through the front-end: (status, headers as a dict, body as text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = urllib.parse.urlencode(form) if form is not None else None
        headers = {"Connection": "close", **({"Host": HOSTS[port]} if port in HOSTS else {})}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def current(h, app):
    rows = json.loads(sarge(h, "list", "--json", check=True).stdout)["instances"]
    (row,) = [r for r in rows if r["application_name"] == app and r["role"] == "current"]
    return row["id"]


def can_read(user, path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "cat", path],
                          capture_output=True).returncode == 0


# -- Flask -----------------------------------------------------------------------------------

@pytest.mark.heavy
def test_flaskr_keeps_its_instance_folder_across_deploys_and_rollbacks(app_home, tmp_path):
    h, user = app_home
    source = tmp_path / "flaskr"
    shutil.copytree(FLASKR, source)
    port = listen_port(10)
    result = deploy(h, source, "--app", "flaskr", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    first = result.stdout.strip()
    assert "instance -> $SARGE_DATA_DIR/instance" in result.stderr  # the step "folders"
    assert "flask --app flaskr init-db" in result.stderr  # the release step ran it
    assert request(port, "/create", "POST", {"title": "one", "body": "first"})[0] == 201
    assert request(port, "/")[2] == "one: first\n"
    database = os.path.join(h.data_dir("flaskr"), "instance", "flaskr.sqlite")
    assert os.path.isfile(database)
    if user is not None:  # written by the app, as its user, through the link
        assert os.stat(database).st_uid == user.uid
        assert os.stat(h.instance_dir(first)).st_uid == 0  # its code stays root's

    # a new version, under load: the same database (init-db is not run again: it drops
    # the tables), and no request fails
    hello = source / "flaskr" / "__init__.py"
    hello.write_text(hello.read_text().replace("Hello, World!", "Hello again"))
    with Load(port, ["/", "/hello"], clients=4) as load:
        second = deploy(h, source, "--app", "flaskr", check=True).stdout.strip()
    assert load.failures == [] and load.ok > 20, (load.ok, load.failures[:5])
    assert front(port, "/hello") == (200, "Hello again")
    assert request(port, "/create", "POST", {"title": "two", "body": "second"})[0] == 201
    assert request(port, "/")[2] == "one: first\ntwo: second\n"
    assert os.readlink(os.path.join(h.instance_dir(second), "instance")) == os.path.relpath(
        os.path.dirname(database), h.instance_dir(second))

    # rollback, under load: the old code, the same data
    with Load(port, ["/", "/hello"], clients=4) as load:
        assert sarge(h, "rollback", "flaskr").returncode == 0
    assert load.failures == [] and load.ok > 10, (load.ok, load.failures[:5])
    assert current(h, "flaskr") == first
    assert front(port, "/hello") == (200, "Hello, World!")
    assert request(port, "/")[2] == "one: first\ntwo: second\n"


# -- Django ----------------------------------------------------------------------------------

_CSS = re.compile(r'href="(/static/polls/style\.[0-9a-f]{12}\.css)"')


def stylesheet(port) -> str:
    """The URL of the polls stylesheet that the current version's page links to."""
    status, _, page = request(port, "/")
    assert status == 200, page[:300]
    return _CSS.search(page).group(1)


def admin_stylesheet(port) -> str:
    status, _, page = request(port, "/admin/login/")
    assert status == 200, page[:300]
    return re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page).group(1)


class Load(Clients):
    """Threads requesting ``paths`` through the front-end until stopped, each on a fresh
    connection; every answer but a 200 is a failure."""

    def __init__(self, port, paths, clients=6):
        self.port, self.paths = port, paths
        self.ok, self.failures = 0, []
        super().__init__(clients)

    def client(self, n):
        i = n
        while not self.stop.is_set():
            path = self.paths[i % len(self.paths)]
            i += 1
            try:
                status = request(self.port, path)[0]
                error = None if status == 200 else f"{path}: {status}"
            except OSError as exc:
                error = f"{path}: {type(exc).__name__}: {exc}"
            if error:
                self.failures.append(error)
            else:
                self.ok += 1



@pytest.mark.heavy
def test_django_static_files_are_served_by_nginx_per_instance(app_home, tmp_path):
    h, user = app_home
    source = tmp_path / "djangosite"
    shutil.copytree(DJANGOSITE, source)
    # ALLOWED_HOSTS its own domain alone: the health check asks with it (as nginx does)
    sarge(h, "config", "site", "DJANGO_SECRET_KEY=not-a-secret-but-long-enough-for-tests",
          "DJANGO_ALLOWED_HOSTS=polls.example.test", check=True)
    port = listen_port(11)
    result = deploy(h, source, "--app", "site", "--listen", f"127.0.0.1:{port}",
                    "--domain", "polls.example.test")
    assert result.returncode == 0, result.stderr
    assert "(Host polls.example.test) answered" in result.stderr
    assert request(port, "/")[0] == 404  # another host: the front-end's 404, not Django's
    HOSTS[port] = "polls.example.test"
    first = result.stdout.strip()
    for step in ("folders", "build", "static", "release"):
        assert f"] {step}" in result.stderr or f" {step} " in result.stderr, step
    assert request(port, "/ask/", "POST", {"question_text": "What's new?"})[0] == 201

    # the admin's CSS, hashed by ManifestStaticFilesStorage: from nginx, cached for good
    admin_css = admin_stylesheet(port)
    status, headers, text = request(port, admin_css)
    assert status == 200 and "body" in text
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Type"] == "text/css"
    css_v1 = stylesheet(port)
    assert request(port, css_v1)[2] == "li { color: green; }\n"
    # not hashed: checked again each time; missing: nginx's own 404, never the app's
    assert request(port, "/static/polls/style.css")[1]["Cache-Control"] == "no-cache"
    status, _, text = request(port, "/static/polls/nothing.css")
    assert status == 404 and "<center>nginx</center>" in text
    folder = h.instance_dir(first)
    if user is not None:  # nginx's workers (nobody) read the static files, not the code
        assert can_read("nobody", os.path.join(folder, "staticfiles", css_v1[8:]))
        assert not can_read("nobody", os.path.join(folder, "mysite", "settings.py"))
        assert can_read(user.name, os.path.join(folder, "mysite", "settings.py"))
        # what the build wrote is root's now: the app cannot change what nginx serves
        st = os.stat(os.path.join(folder, "staticfiles", "staticfiles.json"))
        assert st.st_uid == 0 and not st.st_mode & 0o022
        probe = subprocess.run(["runuser", "-u", user.name, "--", "touch",
                                os.path.join(folder, "staticfiles", "x")], capture_output=True)
        assert probe.returncode != 0

    # a new version with another stylesheet, deployed under load: no request fails
    (source / "polls" / "static" / "polls" / "style.css").write_text("li { color: red; }\n")
    with Load(port, ["/", admin_css]) as load:
        time.sleep(0.3)
        second = deploy(h, source, "--app", "site", check=True).stdout.strip()
        time.sleep(0.3)
    assert load.failures == [], load.failures[:10]
    assert load.ok > 20, load.ok
    css_v2 = stylesheet(port)
    assert css_v2 != css_v1 and request(port, css_v2)[2] == "li { color: red; }\n"
    assert request(port, css_v1)[0] == 404  # each instance serves its own files
    assert "What&#x27;s new?" in request(port, "/")[2]  # the database outlived v1

    # rollback: the old version's page and its stylesheet again
    assert sarge(h, "rollback", "site").returncode == 0
    assert current(h, "site") == first
    assert stylesheet(port) == css_v1
    assert request(port, css_v1)[2] == "li { color: green; }\n"
    wait_until(lambda: request(port, css_v2)[0] == 404, 5, "v2's stylesheet to be gone")
    assert second != first


# -- static files through the machine's nginx; after repair -----------------------------------

@pytest.mark.heavy
def test_static_files_through_the_machines_nginx_and_after_repair(app_home, webapp, tmp_path):
    """[frontend] mode = "system": the static location is in etc/nginx/sites.conf (the
    machine's nginx, started as root, runs its workers as nobody); the mapping is data in
    etc/nginx/routes.json, and outlives a repair of lost records."""
    h, user = app_home
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    system = tmp_path / "system-nginx"
    system.mkdir()
    (system / "nginx.conf").write_text(f"""
pid {system}/nginx.pid;
error_log {system}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    types {{ text/css css; }}
    client_body_temp_path {system}/body;
    proxy_temp_path {system}/proxy;
    fastcgi_temp_path {system}/fastcgi;
    uwsgi_temp_path {system}/uwsgi;
    scgi_temp_path {system}/scgi;
    include {h.nginx_sites};
}}
""")
    args = f"-c {system}/nginx.conf -p {system}/ -e {system}/error.log"
    os.makedirs(os.path.dirname(h.nginx_sites), exist_ok=True)
    open(h.nginx_sites, "w").close()
    subprocess.run([nginx, *args.split()], check=True)
    try:
        edit_settings(h, {
            'mode = "nginx"': 'mode = "system"',
            'test_command = "nginx -t"': f'test_command = "{nginx} -t -q {args}"',
            'reload_command = "nginx -s reload"': f'reload_command = "{nginx} -s reload {args}"',
        })
        (webapp / "sarge-app.toml").write_text('[static]\n"/assets/" = "public"\n')
        (webapp / "public").mkdir()
        (webapp / "public" / "site.0123456789abcdef.css").write_text("a {}\n")
        port = listen_port(12)
        result = deploy(h, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}")
        assert result.returncode == 0, result.stderr
        first = result.stdout.strip()
        folder = h.instance_dir(first)
        link = h.static_link("web", "/assets/")  # nginx serves the current instance's
        assert f"alias {link}/;" in open(h.nginx_sites).read()
        assert os.readlink(link) == f"{folder}/public"
        status, headers, text = wait_until(
            lambda: (r := request(port, "/assets/site.0123456789abcdef.css"))[0] == 200 and r,
            10, "the machine's nginx to serve the file", ignore=OSError)
        assert text == "a {}\n" and headers["Content-Type"] == "text/css"
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        saved = json.load(open(h.routes_path))
        assert saved[0]["static"] == [["/assets/", f"{folder}/public"]]

        # the record and the app's state lost: repair rebuilds them from the folder and
        # routes.json, and the next switch renders the same static location
        os.unlink(h.record_path(first))
        os.unlink(h.app_state_path("web"))
        assert sarge(h, "repair").returncode == 0, "repair"
        (webapp / "VERSION").write_text("2")
        second = deploy(h, webapp, "--app", "web", check=True).stdout.strip()
        assert sarge(h, "rollback", "web").returncode == 0
        assert os.readlink(link) == f"{folder}/public"
        assert request(port, "/assets/site.0123456789abcdef.css")[2] == "a {}\n"
        assert current(h, "web") == first != second
    finally:
        subprocess.run([nginx, *args.split(), "-s", "stop"])


# -- ASGI ------------------------------------------------------------------------------------

@pytest.mark.heavy
def test_a_starlette_app_under_uvicorn_rolls_forward_and_back_under_load(app_home, tmp_path):
    h, user = app_home
    source = tmp_path / "asgiapp"
    shutil.copytree(ASGIAPP, source)
    port = listen_port(12)
    first = deploy(h, source, "--app", "asgi", "--listen", f"127.0.0.1:{port}",
                   check=True).stdout.strip()
    assert front(port) == (200, f"asgi version 1 from {first}\n")
    main = h.supervisor.process(f"{first}:web")["pid"]
    assert "uvicorn" in " ".join(psutil_cmdline(main))  # exec'd: supervisord watches uvicorn
    (source / "VERSION").write_text("2")
    with Load(port, ["/", "/health"], clients=4) as load:
        second = deploy(h, source, "--app", "asgi", check=True).stdout.strip()
        assert sarge(h, "rollback", "asgi").returncode == 0
    assert load.failures == [] and load.ok > 20, (load.ok, load.failures[:5])
    assert front(port) == (200, f"asgi version 1 from {first}\n")
    assert h.supervisor.process(f"{second}:web")["statename"] == "STOPPED"


@pytest.mark.heavy
def test_a_websocket_through_the_front_end_stays_on_its_instance_across_a_deploy(
        app_home, tmp_path):
    """A real WebSocket client through nginx to uvicorn: the upgrade passes; across a
    deploy, the open socket stays on the old instance (still echoing) while new ones reach
    the new instance; once it is idle, the drain ends within seconds ([frontend]
    drain_quiet) and the old uvicorn closes it as it stops (1012: service restart)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    h, user = app_home
    source = tmp_path / "asgiapp"
    shutil.copytree(ASGIAPP, source)
    port = listen_port(13)
    first = deploy(h, source, "--app", "ws", "--listen", f"127.0.0.1:{port}",
                   check=True).stdout.strip()
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as old:
        old.send("hello")
        assert old.recv(timeout=10) == f"{first}: hello"
        (source / "VERSION").write_text("2")
        done = {}
        started = time.monotonic()
        deploying = threading.Thread(target=lambda: done.update(
            result=deploy(h, source, "--app", "ws"), at=time.monotonic()))
        deploying.start()
        try:
            def new_instance():
                with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
                    ws.send("who")
                    answer = ws.recv(timeout=5)
                return None if answer.startswith(first) else answer.partition(":")[0]
            second = wait_until(new_instance, 60, "a new WebSocket to reach the new "
                                "instance", ignore=(OSError, TimeoutError))
            old.send("still there?")  # still on the old instance, which drains
            assert old.recv(timeout=10) == f"{first}: still there?"
        finally:
            deploying.join(120)
        with pytest.raises(ConnectionClosed) as closed:
            old.recv(timeout=10)
    assert closed.value.rcvd is None or closed.value.rcvd.code in (1001, 1012)
    result = done["result"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == second
    assert "only idle connections left" in result.stderr, result.stderr
    assert done["at"] - started < 30  # not drain_timeout's 60 s
    assert h.supervisor.process(f"{first}:web")["statename"] == "STOPPED"


TORNADOAPP = os.path.join(HERE, "apps", "tornadoapp")


@pytest.mark.heavy
def test_four_tornado_processes_behind_one_app_each_answering(app_home, tmp_path):
    """sarge HOME scale NAME web=4, under load: a rolling deploy of the same code with four
    web processes, each on its own port and health-checked before the switch; nginx
    balances across them; the count is kept for the next deploy; web=1 goes back."""
    h, user = app_home
    source = tmp_path / "tornadoapp"
    shutil.copytree(TORNADOAPP, source)
    port = listen_port(14)
    first = deploy(h, source, "--app", "chat", "--listen", f"127.0.0.1:{port}",
                   "--check", "/health", check=True).stdout.strip()
    with Load(port, ["/", "/health"], clients=4) as load:
        scaled = sarge(h, "scale", "chat", "web=4")
        assert scaled.returncode == 0, scaled.stderr
    assert load.failures == [] and load.ok > 20, (load.ok, load.failures[:5])
    assert "answered by each of 4 web processes" in scaled.stderr
    shown = json.loads(sarge(h, "scale", "chat", "--json", check=True).stdout)
    second = shown["instance"]
    assert second != first
    assert shown["types"] == [{"type": "web", "count": 4,
                               "processes": ["web", "web.2", "web.3", "web.4"]}]
    names = [f"{second}:{p}" for p in ("web", "web.2", "web.3", "web.4")]
    spawned = [h.supervisor.process(n)["pid"] for n in names]
    # the deploy returns once each answered its check, before supervisord says RUNNING
    # (startsecs after the spawn): the same four processes, each RUNNING in time

    def all_running():
        infos = [h.supervisor.process(n) for n in names]
        return infos if all(i["statename"] == "RUNNING" for i in infos) else None

    infos = wait_until(all_running, 10, "the four web processes to be RUNNING")
    assert [i["pid"] for i in infos] == spawned
    record = h.get(second)
    ports = [p for _, p in record.web_ports()]
    assert len(set(ports)) == 4 and ports[0] == record.port
    answers = {front(port)[1].split()[2] for _ in range(40)}  # the pids that answered
    assert answers == {str(i["pid"]) for i in infos}  # each of the four
    # the next deploy keeps the count; web=1 goes back to one process
    third = deploy(h, source, "--app", "chat", check=True).stdout.strip()
    assert len(h.get(third).processes) == 4
    assert sarge(h, "scale", "chat", "web=1").returncode == 0
    assert json.loads(sarge(h, "scale", "chat", "--json").stdout)["types"][0]["count"] == 1
    for args, message in ((("ghost=2",), "chat has no process type 'ghost'"),
                          (("web=99",), "invalid count for web: 99"),
                          (("web",), "invalid 'web': give TYPE=N")):
        refused = sarge(h, "scale", "chat", *args)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def psutil_cmdline(pid):
    import psutil

    return psutil.Process(pid).cmdline()
