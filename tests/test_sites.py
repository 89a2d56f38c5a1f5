"""The front-end for real sites, with real supervisord, nginx and HTTP: several apps on one
port by Host, the default server's 404, a health check through the app's own domain,
the operator's include file, maintenance, and the limits of a request."""

import http.client
import json
import os
import shutil
import socket
import threading
import time

import pytest

from .conftest import (
    HERE,
    Clients,
    kill_home,
    listen_port,
    make_home,
    sarge,
    start_supervisord,
    wait_until,
)

SITEAPP = os.path.join(HERE, "apps", "siteapp")

pytestmark = pytest.mark.xdist_group("sites")


def ask(port, path="/", host=None, method="GET", body=None, headers=None, timeout=10):
    """One request to the front-end on ``port`` with ``Host: host``: (status, headers,
    text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent = {"Connection": "close", **({"Host": host} if host else {}), **(headers or {})}
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site_home(tmp_path_factory):
    """One running home for the module; three copies of the site app, each allowing only
    its own host names (as Django's ALLOWED_HOSTS does)."""
    top = tmp_path_factory.mktemp("sites")
    h = make_home(top / "home", offset=300)
    start_supervisord(h)
    sources = {}
    for app, allowed in (("shop", "shop.example.test,www.shop.example.test"),
                         ("blog", "blog.example.test"),
                         ("wild", "a.wild.test,b.wild.test,www.wild.test")):
        source = top / app
        shutil.copytree(SITEAPP, source)
        sources[app] = source
        sarge(h, "config", app, f"ALLOWED_HOSTS={allowed}", check=True)
    yield h, sources
    kill_home(h)


PORT = listen_port(50)


def deploy(h, source, app, *args):
    return sarge(h, "deploy", str(source), "--app", app, "--check", "/health", *args,
                 timeout=120)


def test_three_apps_on_one_port_by_host(site_home):
    h, sources = site_home
    listen = f"127.0.0.1:{PORT}"
    shop = deploy(h, sources["shop"], "shop", "--listen", listen,
                  "--domain", "shop.example.test", "--domain", "www.shop.example.test")
    assert shop.returncode == 0, shop.stderr
    # the health check sent the app's own domain: an app that allows only it passed
    assert "(Host shop.example.test) answered" in shop.stderr
    blog = deploy(h, sources["blog"], "blog", "--listen", listen, "--domain", "blog.example.test")
    assert blog.returncode == 0, blog.stderr
    wild = deploy(h, sources["wild"], "wild", "--listen", listen, "--domain", "*.wild.test")
    assert wild.returncode == 0, wild.stderr
    assert "(Host www.wild.test)" in wild.stderr

    for host, app_id in (("shop.example.test", shop), ("www.shop.example.test", shop),
                         ("blog.example.test", blog), ("a.wild.test", wild),
                         ("b.wild.test", wild)):
        status, _, text = ask(PORT, host=host)
        assert status == 200, (host, text)
        instance, seen_host, proto = text.split()
        assert instance == app_id.stdout.strip() and seen_host == host and proto == "http"
    # any other host: the default server's 404, never some app's answer
    for host in ("other.test", "127.0.0.1", "example.test"):
        status, _, text = ask(PORT, host=host)
        assert status == 404 and "nginx" in text, (host, status, text)

    # a fourth app claiming shop's domain on the port: refused, naming shop; nothing made
    before = sorted(os.listdir(h.path))
    refused = deploy(h, sources["blog"], "copy", "--listen", listen,
                     "--domain", "www.shop.example.test")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"sarge: --listen {listen}: --domain www.shop.example.test on port {PORT} is already "
        "the app shop's")
    assert sorted(os.listdir(h.path)) == before
    # an app without domains cannot take a port that apps share by host
    alone = deploy(h, sources["blog"], "copy", "--listen", listen)
    assert alone.returncode == 2 and "apps share a port when each has its --domain" \
        in alone.stderr

    # domains change without a redeploy: the same instance, nginx reloaded
    changed = sarge(h, "domains", "blog", "--add", "news.example.test", "--json")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["domains"] == ["blog.example.test", "news.example.test"]
    sarge(h, "config", "blog", "ALLOWED_HOSTS=blog.example.test,news.example.test",
          check=True)  # the running instance keeps its variables: it answers 400 ...
    status, _, text = ask(PORT, host="news.example.test")
    assert status == 400 and "Invalid HTTP_HOST header" in text  # ... but nginx routed it
    removed = sarge(h, "domains", "blog", "--remove", "news.example.test")
    assert removed.returncode == 0, removed.stderr
    # (an old worker may take a connection just after the reload: it finishes soon)
    wait_until(lambda: ask(PORT, host="news.example.test")[0] == 404, 5, "the domain gone")
    missing = sarge(h, "domains", "blog", "--remove", "nope.example.test")
    assert missing.returncode == 2 and "nope.example.test is not a domain of this app" \
        in missing.stderr
    shown = sarge(h, "domains", "blog")
    assert "blog.example.test" in shown.stdout and shown.returncode == 0
    bad = sarge(h, "domains", "blog", "--add", "bad domain")
    assert bad.returncode == 2 and "invalid --domain 'bad domain'" in bad.stderr


def test_the_health_check_host_and_check_host(site_home, tmp_path):
    h, sources = site_home
    # an app whose allowed host is not its first domain fails its check by name ...
    source = tmp_path / "strict"
    shutil.copytree(SITEAPP, source)
    sarge(h, "config", "strict", "ALLOWED_HOSTS=internal.test", check=True)
    args = ("--listen", f"127.0.0.1:{PORT}", "--domain", "strict.example.test",
            "--timeout", "3")
    failed = deploy(h, source, "strict", *args)
    assert failed.returncode == 1
    assert "(Host strict.example.test) gave HTTP 400" in failed.stderr
    # ... and passes with --check-host
    passed = deploy(h, source, "strict", *args, "--check-host", "internal.test")
    assert passed.returncode == 0, passed.stderr
    assert "(Host internal.test) answered" in passed.stderr
    assert sarge(h, "undeploy", "strict").returncode == 0


def test_maintenance_answers_503_but_the_check_and_the_instance_stay(site_home):
    h, sources = site_home
    on = sarge(h, "maintenance", "shop", "on", "--message", "Back at 5 <b>soon</b> $x")
    assert on.returncode == 0, on.stderr
    status, headers, text = ask(PORT, "/", host="shop.example.test")
    assert status == 503 and headers["Retry-After"] == "120"
    assert "Back at 5 &lt;b&gt;soon&lt;/b&gt; $x" in text
    assert headers["Content-Type"].startswith("text/html")
    assert ask(PORT, "/health", host="shop.example.test")[0] == 200
    assert ask(PORT, "/", host="blog.example.test")[0] == 200  # that app only
    # a deploy during maintenance keeps the page
    again = deploy(h, sources["shop"], "shop")
    assert again.returncode == 0, again.stderr
    assert ask(PORT, "/", host="shop.example.test")[0] == 503
    off = sarge(h, "maintenance", "shop", "off")
    assert off.returncode == 0, off.stderr
    status, _, text = ask(PORT, "/", host="shop.example.test")
    assert status == 200 and text.split()[0] == again.stdout.strip()


def test_the_operators_include_file_is_kept_and_checked(site_home):
    h, sources = site_home
    include = h.nginx_include_path("blog")
    with open(include) as f:
        assert "never writes it again" in f.read()
    with open(include, "a") as f:
        f.write("add_header X-Operator kept;\n")
    deployed = deploy(h, sources["blog"], "blog")
    assert deployed.returncode == 0, deployed.stderr
    assert ask(PORT, host="blog.example.test")[1].get("X-Operator") == "kept"
    with open(include) as f:
        assert "X-Operator kept" in f.read()
    # a directive nginx refuses: the change is refused, nginx serves on as before
    with open(include, "a") as f:
        f.write("no_such_directive on;\n")
    refused = sarge(h, "limits", "blog", "--body-size", "20m")
    assert refused.returncode == 1 and "nginx refused the new configuration" in refused.stderr
    assert "no_such_directive" in refused.stderr
    assert json.loads(sarge(h, "limits", "blog", "--json").stdout)["body_size"] == "10m"
    assert ask(PORT, host="blog.example.test")[0] == 200
    with open(include, "w") as f:
        f.write("add_header X-Operator kept;\n")


def upload(port, host, size):
    """POST ``size`` bytes: the status and the text."""
    status, _, text = ask(port, "/upload", host=host, method="POST", body=b"x" * size,
                          timeout=30)
    return status, text.strip()


def test_limits_body_size_read_timeout_and_streaming(site_home):
    h, _ = site_home
    host = "blog.example.test"
    assert upload(PORT, host, 2 * 1024 * 1024) == (200, str(2 * 1024 * 1024))  # nginx: 1 MB
    assert upload(PORT, host, 11 * 1024 * 1024)[0] == 413
    changed = sarge(h, "limits", "blog", "--body-size", "20m", "--read-timeout", "2")
    assert changed.returncode == 0, changed.stderr
    assert "body_size 10m -> 20m" in changed.stderr
    assert upload(PORT, host, 11 * 1024 * 1024) == (200, str(11 * 1024 * 1024))
    # a long-poll longer than the read timeout: 504; a shorter one answers
    assert ask(PORT, "/poll?s=3", host=host)[0] == 504
    assert ask(PORT, "/poll?s=1", host=host)[:1] == (200,)
    # streaming with buffering off: each line comes as the app writes it (0.3 s apart:
    # the whole answer takes 1.2 s), and nginx buffers nothing
    assert sarge(h, "limits", "blog", "--read-timeout", "120", "--no-buffering").returncode == 0
    assert "proxy_buffering off;" in open(h.nginx_conf).read()
    assert first_line_delay(host) < 0.6
    bad = sarge(h, "limits", "blog", "--body-size", "lots")
    assert bad.returncode == 2 and "invalid --body-size 'lots'" in bad.stderr


def first_line_delay(host) -> float:
    """Seconds between the app writing the first line of /stream and the client getting
    it through the front-end."""
    conn = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    try:
        conn.sendall(f"GET /stream HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while b"line 0" not in data:
            chunk = conn.recv(4096)
            assert chunk, data
            data += chunk
        got_at = time.time()
        return got_at - float(data.split(b" line 0")[0].split()[-1])
    finally:
        conn.close()


def test_a_redeploy_with_an_idle_long_poll_open_finishes_in_seconds(site_home):
    """The long-poll keeps the old version's connection open and quiet: the drain ends
    after [frontend] drain_quiet (3 s), not drain_timeout (60 s); the old version is
    stopped, and the client of the long-poll sees its request end (502: the app that
    held it is gone)."""
    h, sources = site_home
    host = "blog.example.test"
    answer = {}
    poll = threading.Thread(target=lambda: answer.update(
        got=ask(PORT, "/poll?s=50", host=host, timeout=60)[0]))
    poll.start()
    time.sleep(0.5)
    start = time.monotonic()
    result = deploy(h, sources["blog"], "blog")
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "only idle connections left" in result.stderr
    assert seconds < 20, result.stderr
    poll.join(60)
    assert answer["got"] == 502


class Requests(Clients):
    """Threads sending ``request()`` (a function returning a status) until stopped; every
    status and error, counted."""

    def __init__(self, request, threads=3):
        self.request = request
        self.statuses, self.errors = [], []
        super().__init__(threads)

    def client(self, n):
        while not self.stop.is_set():
            try:
                self.statuses.append(self.request())
            except OSError as exc:
                self.errors.append(repr(exc))



def test_ten_megabyte_uploads_through_a_switch_and_maintenance_under_load(site_home):
    h, sources = site_home
    host, size = "shop.example.test", 10 * 1024 * 1024
    with Requests(lambda: upload(PORT, host, size)) as uploads:
        time.sleep(0.5)
        result = deploy(h, sources["shop"], "shop")
        assert result.returncode == 0, result.stderr
        time.sleep(0.5)
    assert uploads.errors == [] and len(uploads.statuses) >= 3, uploads.errors[:3]
    assert set(uploads.statuses) == {(200, str(size))}
    # maintenance on and off under load: each answer is the app's or the page, never an
    # error, and the other apps serve on
    with Requests(lambda: ask(PORT, "/", host=host)[0]) as shop, \
            Requests(lambda: ask(PORT, "/", host="blog.example.test")[0], 1) as blog:
        time.sleep(0.3)
        assert sarge(h, "maintenance", "shop", "on").returncode == 0
        time.sleep(0.5)
        assert sarge(h, "maintenance", "shop", "off").returncode == 0
        time.sleep(0.3)
    assert shop.errors == [] and blog.errors == []
    assert set(shop.statuses) == {200, 503} and set(blog.statuses) == {200}


def test_not_deployed_and_bad_input_change_nothing(site_home):
    h, _ = site_home
    before = open(h.nginx_conf).read()
    for args, code, message in (
            (("domains", "ghost", "--add", "g.test"), 1, "ghost is not deployed"),
            (("maintenance", "shop", "off", "--message", "x"), 2, "--message goes with on"),
            (("maintenance", "shop", "maybe"), 2, "Invalid value"),
            (("tls", "shop", "--cert", "/nonexistent"), 2, "give --cert and --key together"),
            (("limits", "shop", "--read-timeout", "0"), 2, "invalid --read-timeout 0")):
        result = sarge(h, *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert open(h.nginx_conf).read() == before


def test_repair_rebuilds_an_apps_domains_and_limits_from_the_routes(site_home):
    h, _ = site_home
    before = json.loads(sarge(h, "limits", "blog", "--json").stdout)
    os.unlink(h.app_state_path("blog"))
    result = sarge(h, "repair")
    assert result.returncode == 0, result.stderr
    assert "health check GET /health" in result.stdout
    assert json.loads(sarge(h, "limits", "blog", "--json").stdout) == before
    assert ask(PORT, host="blog.example.test")[0] == 200
