"""Apps' deploy states (``var/apps/APP.json``) rebuilt from the routes the front-end
was given and the instance records."""

from __future__ import annotations

import os
import re

from ..apps import AppState, check_path, load_state
from ..errors import SargeError
from ..files import File, write_file
from ..frontend import routes as saved_routes
from ..instance import check_app_name
from ..site import Site
from .findings import read


def readable_states(home) -> dict:
    """app -> AppState of every state file that reads and names its own app."""
    states = {}
    for name in sorted(os.listdir(home.apps_dir)):
        if name.endswith(".json"):
            try:
                state = load_state(os.path.join(home.apps_dir, name), name[:-5])
            except SargeError:
                continue
            if state.name == name[:-5]:
                states[state.name] = state
    return states


def app_names(home, findings, folder) -> set:
    """The apps that ``folder`` has a ``NAME.json`` of; a file with a name no app can
    have is reported."""
    names = set()
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            names.add(check_app_name(name[:-5]))
        except SargeError:
            findings.manual(os.path.join(folder, name), "not named after an app",
                            f"move it out of {os.path.relpath(folder, home.path)}")
    return names


def rebuild_states(home, findings, states: dict, records: dict, born) -> None:
    """Rebuild into ``states`` each app's state that is damaged or missing though the
    front-end routes the app; ``born(id)`` orders instances made in one second."""
    routes = _routes(home)
    for app in sorted(app_names(home, findings, home.apps_dir) | set(routes)):
        if app in states:
            continue
        path = home.app_state_path(app)
        if os.path.exists(path):
            try:
                problem = f"damaged: it names the app {load_state(path, app).name!r}"
            except SargeError as exc:
                problem = str(exc).split(";")[0]
        else:
            problem = "missing, though the front-end routes the app"
        listen, current, site, check = routes.get(app, (None, None, Site(), "/"))
        if current not in records:
            current = None
        state = AppState(app, listen=listen, current=current, check=check, site=site,
                         previous=_previous(records, app, current, born))
        states[app] = state
        if current:
            action = f"rebuilt from the front-end's configuration: {listen} -> {current}"
            if state.previous:
                action += f", previous {', '.join(state.previous)}"
        else:
            action = ("rebuilt without a current instance (the front-end routes to none "
                      "sarge knows): `route` it to the instance that should serve before "
                      "the next deploy, which removes the deploy-made ones it does not "
                      "know")
        findings.fix(path, problem, action + f"; health check GET {check} within 60 s",
                     lambda s=state, p=path: write_file(File(p, s.to_json())))


def _previous(records, app, current, born) -> tuple:
    """The deploy-made instances of ``app`` from before ``current``, newest first (the
    records' times are whole seconds: the port links order those of one second)."""
    if current is None:
        return ()

    def age(record):
        return (record.created, born(record.id))
    cut = age(records[current])
    return tuple(r.id for r in sorted(
        (r for r in records.values() if r.application_name == app
         and r.origin == "deploy" and r.id != current and age(r) < cut),
        key=age, reverse=True))


def _routes(home) -> dict:
    """app -> (listen, instance id, site, health check path), from the routes the
    front-end was last given (``etc/nginx/routes.json``); for a home from before sarge
    saved them, from the comments of the nginx configuration it wrote."""
    saved = saved_routes.load(home.routes_path)
    if saved is not None:
        return {r["app"]: (r["listen"], r["instance"], _site(r), _check(r)) for r in saved}
    path = home.nginx_sites if home.settings.frontend == "system" else home.nginx_conf
    text = read(path)[0] or ""
    routes = {}
    pattern = r"# app ([a-z][a-z0-9_-]*): instance (\S+)\n\s*server \{\n\s*listen (\S+);"
    for app, instance_id, listen in re.findall(pattern, text):
        routes[app] = (listen, instance_id, Site(), "/")
    return routes


def _site(route) -> Site:
    """The site a saved route names (its domains, TLS, limits, maintenance), or the
    default one when it names none or a damaged one."""
    try:
        return Site.from_dict(route.get("site"))
    except SargeError:
        return Site()


def _check(route) -> str:
    try:
        return check_path(route.get("check", "/"))
    except SargeError:
        return "/"
