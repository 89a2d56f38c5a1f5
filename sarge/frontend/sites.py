"""From routes (data) to what nginx's templates need: the paths of each app's files, the
default servers of shared ports, and the files nginx reads beside its configuration
(the maintenance pages, the operator's include files)."""

from __future__ import annotations

import hashlib
import html
import os

from ..files import File, write_file
from ..site import Site
from .tls import files as tls_files


def context(layout, routes: list, defaults: bool = True) -> dict:
    """The template context of ``routes`` (dicts: app, instance, listen, port, socket,
    static, backup, check, site) for the home at ``layout``; ``defaults``: with a default
    server (404) for each address whose apps have domains (not in the machine's nginx,
    whose own default server answers the hosts no site has)."""
    rendered, servers = [], {}
    for route in routes:
        app, site = route["app"], Site.from_dict(route.get("site")).to_dict()
        route = dict(route, site=site, include=layout.nginx_include_path(app),
                     check_path=route.get("check", "/").partition("?")[0])
        if site.get("maintenance") is not None:
            route["maintenance_page"] = layout.maintenance_page(app)
        tls = site.get("tls")
        if tls:
            route["tls_files"] = tls_files(layout, app, tls["digest"])
            port = tls["listen"].rpartition(":")[2]
            route["tls_port_suffix"] = "" if port == "443" else f":{port}"
        if route.get("static"):  # through links too
            route["static"] = [[prefix, layout.static_link(app, prefix)]
                               for prefix, _folder in route["static"]]
        if route.get("socket"):  # through the links: a switch changes nothing here
            route["link"] = layout.front_link(app)
            route["backup_link"] = layout.front_link(app, backup=True)
        if site.get("domains"):
            servers.setdefault(route["listen"], False)
            if tls:
                servers.setdefault(tls["listen"], True)
        rendered.append(route)
    return {"routes": rendered, "tag": tag(layout.path), "acme": layout.acme_dir,
            "defaults": [{"listen": listen, "tls": tls}
                         for listen, tls in sorted(servers.items())] if defaults else []}


def tag(home: str) -> str:
    """A short suffix, the same for a home every time, for the names that a machine's
    nginx shares between the homes it includes (map variables, upstreams)."""
    return hashlib.sha256(os.fsencode(home)).hexdigest()[:8]


def write_files(layout, routes: list) -> None:
    """Write what nginx reads beside its configuration for ``routes``: each app's
    maintenance page (when it is in maintenance) and, once, its empty include file."""
    for route in routes:
        app, site = route["app"], route.get("site") or {}
        include = layout.nginx_include_path(app)
        if not os.path.exists(include):
            layout.make_later("etc/nginx/apps")
            write_file(File(include, INCLUDE.format(app=app), mode=0o644))
        if site.get("maintenance") is not None:
            layout.make_later("var/maintenance")
            write_file(File(layout.maintenance_page(app),
                            page(app, site["maintenance"]), mode=0o644))
        if site.get("domains"):
            layout.make_later("var/acme")


INCLUDE = """\
# Your own nginx directives for the app {app}, inside each server block that serves it
# (HTTP and HTTPS; not one that only redirects to HTTPS): e.g. a `location` of your own,
# or `add_header X-Frame-Options DENY;` (not inherited by the static files' locations).
# sarge made this file empty once and never writes it again; every change of the
# front-end checks it with `nginx -t` before it is loaded.
"""


def page(app: str, message: str) -> str:
    """The maintenance page of ``app``: its message, or a default one."""
    text = html.escape(message or f"{app} is down for maintenance; please try again "
                       "in a few minutes.")
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Maintenance"
            f"</title></head>\n<body><p>{text}</p></body></html>\n")


class Links:
    """The links nginx connects through to the apps on ``$SARGE_SOCKET``
    (``var/front/APP.sock``, and ``APP.backup.sock`` while a watch keeps the old instance
    ready) and serves the current instance's static folders through
    (``APP.static.DIGEST``, by URL prefix): moved by :meth:`swap`, atomically each, so
    that a switch of such an app changes nothing in nginx's configuration and needs no
    reload. :meth:`restore` puts back what :meth:`swap` changed; :meth:`prune` removes
    the unwanted ones once nginx has its new routes; ``replaced`` lists the sockets that
    no longer serve (what the drain waits for)."""

    def __init__(self, layout, routes: list):
        self.layout = layout
        self.wanted = {}
        for route in routes:
            for prefix, folder in route.get("static") or ():
                self.wanted[layout.static_link(route["app"], prefix)] = folder
            if route.get("socket"):
                self.wanted[layout.front_link(route["app"])] = route["socket"]
                backup = route.get("backup") or {}
                if backup.get("socket"):
                    self.wanted[layout.front_link(route["app"], backup=True)] = backup["socket"]
        self.changed = None  # path -> its target before swap() (None: there was none)
        self.replaced = []

    def _current(self) -> dict:
        folder = os.path.join(self.layout.path, "var", "front")
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return {}
        found = {}
        for name in names:
            path = os.path.join(folder, name)
            if (name.endswith(".sock") or ".static." in name) and os.path.islink(path):
                found[path] = os.readlink(path)
        return found

    def swap(self) -> None:
        """Make or move every wanted link (what nginx will connect through); the ones no
        longer wanted stay until :meth:`prune`, for the old workers still serving."""
        if self.wanted:
            self.layout.make_later("var/front")
        before = self._current()
        self.changed = {}
        for path, target in self.wanted.items():
            if before.get(path) != target:
                self.changed[path] = before.get(path)
                _link(path, target)
                if before.get(path) and path.endswith(".sock") \
                        and not path.endswith(".backup.sock"):
                    self.replaced.append(before[path])

    def prune(self) -> None:
        """Remove the links no route wants any more (once nginx has the new routes)."""
        for path, target in self._current().items():
            if path not in self.wanted:
                os.unlink(path)
                if path.endswith(".sock") and not path.endswith(".backup.sock"):
                    self.replaced.append(target)

    def restore(self) -> None:
        """Put back what :meth:`swap` changed (nothing, if it did not run)."""
        for path, target in (self.changed or {}).items():
            if target is None:
                if os.path.lexists(path):
                    os.unlink(path)
            else:
                _link(path, target)
        self.changed = None
        self.replaced = []


def _link(path: str, target: str) -> None:
    """Point the link ``path`` at ``target`` in one step (a new link renamed over it)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def connected(sockets) -> frozenset:
    """The connections the unix sockets ``sockets`` (paths) hold open now: the inodes of
    the accepted ones, from ``/proc/net/unix`` (state 03, connected)."""
    wanted = set(sockets)
    if not wanted:
        return frozenset()
    found = set()
    with open("/proc/net/unix") as f:
        next(f, None)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[5] == "03" and parts[7] in wanted:
                found.add(parts[6])
    return frozenset(found)
