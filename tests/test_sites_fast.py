"""The fast tier of the front-end for real sites: the rules of shared ports, the values'
checks, the edits of the site commands, the links a switch moves, and how the drain
ends (with a fake clock and a real sleeping process as nginx's old worker)."""

import dataclasses
import os
import subprocess
import time

import psutil
import pytest

from sarge.deploy import site as edits
from sarge.errors import UsageError
from sarge.frontend.base import Drain, Frontend
from sarge.frontend.sites import Links
from sarge.layout import Layout
from sarge.site import TLS, Site, check_domain, conflict

from .conftest import wait_until

pytestmark = pytest.mark.fast

SHOP = Site(domains=("shop.test", "www.shop.test"))
BLOG = Site(domains=("blog.test",))
WILD = Site(domains=("*.shop.test",))


@pytest.mark.parametrize("listen, site, others, problem", [
    ("0.0.0.0:80", BLOG, [("shop", "0.0.0.0:80", SHOP)], None),
    ("0.0.0.0:80", WILD, [("shop", "0.0.0.0:80", SHOP)], None),  # exact names win
    ("0.0.0.0:80", Site(domains=("www.shop.test",)), [("shop", "0.0.0.0:80", SHOP)],
     "--domain www.shop.test on port 80 is already the app shop's"),
    ("0.0.0.0:80", Site(), [("shop", "0.0.0.0:80", SHOP)],
     "port 80 is already the front-end of the app shop; apps share a port when each has "
     "its --domain"),
    ("0.0.0.0:80", BLOG, [("api", "0.0.0.0:80", Site())],
     "port 80 is already the front-end of the app api"),
    ("127.0.0.1:80", BLOG, [("shop", "0.0.0.0:80", SHOP)],
     "port 80 is shop's front-end at 0.0.0.0:80: give the same address to share it"),
    ("0.0.0.0:443", BLOG, [("shop", "0.0.0.0:80", SHOP.replace(
        tls=TLS("c", "k", listen="0.0.0.0:443")))],
     "port 443 is shop's HTTPS front-end; choose another port"),
    ("0.0.0.0:8443", BLOG.replace(tls=TLS("c", "k", listen="0.0.0.0:8443")), [],
     "port 8443 cannot be both its HTTP and its HTTPS front-end"),
    ("0.0.0.0:80", BLOG, [("blog", "0.0.0.0:80", BLOG)], None),  # itself: no conflict
])
def test_who_may_share_a_port(listen, site, others, problem):
    found = conflict("blog", listen, site, others)
    assert (found is None) if problem is None else found.startswith(problem), found


def test_domains_are_checked_and_the_health_check_host_chosen():
    assert check_domain("Shop.Example.COM.") == "shop.example.com"
    for bad in ("bad domain", "-a.test", "a..test", "*.*.test", "shop.*.test", "ünï.test",
                "x" * 64 + ".test", "a;b.test", "a$b.test"):
        with pytest.raises(UsageError):
            check_domain(bad)
    assert SHOP.health_host == "shop.test"
    assert Site(domains=("*.shop.test", "shop.test")).health_host == "shop.test"
    assert WILD.health_host == "www.shop.test"
    assert SHOP.replace(check_host="internal.test").health_host == "internal.test"
    assert Site().health_host is None


def test_the_edits_of_the_site_commands():
    assert edits.domains(["a.test", "A.test"])(BLOG) == {"domains": ("blog.test", "a.test")}
    assert edits.domains(remove=["blog.test"])(BLOG) == {"domains": ()}
    with pytest.raises(UsageError, match="nope.test is not a domain of this app"):
        edits.domains(remove=["nope.test"])(BLOG)
    assert edits.maintenance(True, "back soon")(BLOG) == {"maintenance": "back soon"}
    assert edits.maintenance(True)(BLOG) == {"maintenance": ""}
    assert edits.maintenance(False)(BLOG) == {"maintenance": None}
    served = BLOG.replace(tls=TLS("/c.pem", "/k.pem", digest="d1"))
    # options alone keep the copies (the files are not read again) ...
    assert edits.tls(hsts=True)(served)["tls"] == dataclasses.replace(served.tls, hsts=True)
    assert edits.tls(hsts=False)(served) == {}  # nothing changes
    # ... new files, or --reload, are read (and checked) again: no digest yet
    assert edits.tls(reload=True)(served)["tls"].digest == ""
    assert edits.tls("/n.pem", "/n.key")(served)["tls"] == TLS("/n.pem", "/n.key")
    assert edits.tls(off=True)(served) == {"tls": None}
    with pytest.raises(UsageError, match="no certificate yet"):
        edits.tls(hsts=True)(BLOG)


def routes(folder, socket="s1", backup=None, static=None):
    route = {"app": "web", "instance": "web-aaaaaa", "listen": "0.0.0.0:80", "port": 1,
             "socket": os.path.join(folder, socket) if socket else None}
    if backup:
        route["backup"] = {"instance": "web-bbbbbb", "socket": os.path.join(folder, backup)}
    if static:
        route["static"] = [["/static/", os.path.join(folder, static)]]
    return [route]


def links(home):
    front = os.path.join(home, "var", "front")
    return {n: os.path.basename(os.readlink(os.path.join(front, n)))
            for n in sorted(os.listdir(front))} if os.path.isdir(front) else {}


def test_links_move_in_one_step_and_a_refusal_puts_back_only_what_moved(tmp_path):
    layout = Layout(tmp_path)
    static = os.path.basename(layout.static_link("web", "/static/"))
    first = Links(layout, routes(tmp_path, "s1", static="v1"))
    first.swap()
    first.prune()
    assert links(tmp_path) == {"web.sock": "s1", static: "v1"} and first.replaced == []
    # refused before it swapped (nginx -t said no): nothing changes, nothing is removed
    Links(layout, routes(tmp_path, "s2", static="v2")).restore()
    assert links(tmp_path) == {"web.sock": "s1", static: "v1"}
    # swapped, then refused (the reload failed): put back as it was
    refused = Links(layout, routes(tmp_path, "s2", backup="s1", static="v2"))
    refused.swap()
    assert links(tmp_path) == {"web.sock": "s2", "web.backup.sock": "s1", static: "v2"}
    refused.restore()
    assert links(tmp_path) == {"web.sock": "s1", static: "v1"}
    # a watch, then its end: the backup link goes once nginx has the routes without it
    watch = Links(layout, routes(tmp_path, "s2", backup="s1", static="v2"))
    watch.swap()
    watch.prune()
    assert watch.replaced == [os.path.join(tmp_path, "s1")]  # what the drain waits for
    end = Links(layout, routes(tmp_path, "s2", static="v2"))
    end.swap()
    assert "web.backup.sock" in links(tmp_path)  # still there for the old workers
    end.prune()
    assert links(tmp_path) == {"web.sock": "s2", static: "v2"} and end.replaced == []
    # the app moves to a TCP port: its link goes, and its socket is drained
    tcp = Links(layout, routes(tmp_path, socket=None))
    tcp.swap()
    tcp.prune()
    assert links(tmp_path) == {} and tcp.replaced == [os.path.join(tmp_path, "s2")]


class Settings:
    drain_timeout = 10
    drain_quiet = 3


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def frontend(tmp_path, **settings):
    clock = Clock()
    kind = type("Settings", (Settings,), settings)
    return Frontend(Layout(tmp_path), None, kind(), sleep=clock.sleep, clock=clock), clock


def settled(process):
    """Wait until ``process`` runs its program and reads and writes nothing more."""
    def still():
        before = process.io_counters()
        time.sleep(0.05)
        return process.name() == "sleep" and process.io_counters() == before
    wait_until(still, 10, "the sleep to settle", interval=0)


def test_the_drain_ends_drained_quiet_or_timed_out(tmp_path):
    front, clock = frontend(tmp_path)
    assert front.drain(Drain()) == "drained"
    worker = subprocess.Popen(["sleep", "60"])  # an old nginx worker holding a connection
    try:
        process = psutil.Process(worker.pid)
        settled(process)  # (seen: its exec, late on a loaded machine, moved the fake clock)
        assert front.drain(Drain([process])) == "quiet"
        assert 3 <= clock.now < 3.5  # drain_quiet, not 10
        front, clock = frontend(tmp_path, drain_quiet=0)
        assert front.drain(Drain([process])) == "timed out" and clock.now > 10
    finally:
        worker.kill()
        worker.wait()
    front, clock = frontend(tmp_path)
    assert front.drain(Drain([process])) == "drained"  # gone: nothing to wait for


def test_scaled_types_their_counts_and_their_upstream():
    from sarge import render
    from sarge.apps import check_scale
    from sarge.deploy.prepare import scale_of
    from sarge.errors import BuildError
    from sarge.frontend import sites
    from sarge.instance import Instance, scaled
    from sarge.manifest import Manifest

    procfile = {"web": "gunicorn app:app", "worker": "celery worker", "beat": "celery beat"}
    assert scaled(procfile, {"web": 3, "worker": 2}) == {
        "web": "gunicorn app:app", "web.2": "gunicorn app:app", "web.3": "gunicorn app:app",
        "worker": "celery worker", "worker.2": "celery worker", "beat": "celery beat"}
    assert check_scale({"web": 4, "worker": 1}) == {"web": 4}
    for bad in ({"web": 0}, {"web": 33}, {"Web": 2}, {"web": "4"}):
        with pytest.raises(UsageError):
            check_scale(bad)
    declared = Manifest.from_dict({"processes": {"beat": {"singleton": True}}})
    # a type this version lacks is not scaled, nor a singleton; a socket's web refused
    assert scale_of(procfile, declared, {"web": 2, "beat": 3, "gone": 2}) == {"web": 2}
    with pytest.raises(BuildError, match="web is scaled to 2, but it listens on"):
        scale_of({"web": "gunicorn --bind unix:$SARGE_SOCKET app:app"}, declared, {"web": 2})
    instance = Instance("web-aaaaaa", "web", 5000, "now",
                        processes=scaled({"web": "x"}, {"web": 3}), ports=(5003, 5001))
    assert instance.web_ports() == [("web", 5000), ("web.2", 5003), ("web.3", 5001)]
    assert instance.port_of("web.3") == 5001 and instance.port_of("worker") is None
    route = {"app": "web", "instance": instance.id, "listen": "0.0.0.0:80", "port": 5000,
             "socket": None, "ports": [5000, 5003, 5001]}
    text = render.nginx_sites("/x", sites=sites.context(Layout("/h"), [route])).text
    upstream = text[text.index("upstream sarge_web_"):]
    assert upstream.index("least_conn;") < upstream.index("server 127.0.0.1:5000;") \
        < upstream.index("server 127.0.0.1:5003;") < upstream.index("server 127.0.0.1:5001;")
    watched = dict(route, backup={"instance": "web-bbbbbb", "port": 4000, "socket": None,
                                  "ports": [4000, 4001]})
    text = render.nginx_sites("/x", sites=sites.context(Layout("/h"), [watched])).text
    assert "server 127.0.0.1:5001;" in text and "server 127.0.0.1:4001 backup;" in text
