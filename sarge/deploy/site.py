"""Changes of how the front-end serves an app, without a deploy: its domains, TLS, limits
and maintenance page (:class:`~sarge.site.Site`). Each is checked like a deploy's
(another app's domain, a port something else holds, a certificate that is not its
key's), saved with the app's state and loaded by a graceful reload of nginx; the app's
instances are not touched."""

from __future__ import annotations

import dataclasses
import os

from ..apps import parse_listen
from ..errors import DeployError, UsageError
from ..frontend import tls as certificates
from ..instance import check_app_name
from ..site import TLS, check_domains, checked
from .plan import check_front


def resolve(changes: dict) -> dict:
    """``changes`` checked (:func:`sarge.site.checked`), a certificate with them that has
    no digest yet (new files, or the same read again): its files read and proven
    (:func:`sarge.frontend.tls.check`), its digest filled in."""
    changes = checked(changes)
    tls = changes.get("tls")
    if tls is not None:
        tls = dataclasses.replace(tls, listen=parse_listen(tls.listen))
        if not tls.digest:
            cert, key = os.path.abspath(tls.cert), os.path.abspath(tls.key)
            tls = dataclasses.replace(tls, cert=cert, key=key,
                                      digest=certificates.check(cert, key))
        changes["tls"] = tls
    return changes


def change(deployer, app: str, edit) -> tuple:
    """Change the site of ``app``: ``edit(site)`` returns the changes (see
    :func:`resolve`). Returns (old state, new state); nothing is reloaded when nothing
    changes."""
    home, switch = deployer.home, deployer.switch
    home.check()
    check_app_name(app)
    with switch.app_lock(app):
        old = switch.state(app)
        if old.current is None or old.listen is None:
            raise DeployError(f"{app} is not deployed: deploy it first "
                              f"(`sarge HOME deploy SOURCE --app {app} ...`)")
        new = old.replace(site=old.site.replace(**resolve(edit(old.site))))
        if new == old:
            return old, new
        check_front(switch, home.settings, old, new, deployer.can_bind)
        with deployer.steps.step("reload") as step:
            switch.switch(old, new)
            step["detail"] = f"{new.listen}: nginx reloaded"
    home.log_action("site", f"{app}: {describe(old.site, new.site)}")
    return old, new


def domains(add=(), remove=()):
    """The edit that adds and removes domains (``remove`` of one it lacks: refused)."""
    add, remove = check_domains(add), check_domains(remove)

    def edit(site):
        missing = [d for d in remove if d not in site.domains]
        if missing:
            raise UsageError(f"{missing[0]} is not a domain of this app; it has "
                             f"{', '.join(site.domains) or 'none'}")
        kept = tuple(d for d in site.domains if d not in remove)
        return {"domains": kept + tuple(d for d in add if d not in kept)}
    return edit


def maintenance(on: bool, message: str | None = None):
    """The edit that turns the maintenance page on (with ``message``) or off."""
    def edit(site):
        return {"maintenance": (message or "") if on else None}
    return edit


def limits(**changes):
    """The edit that sets the given limits (body_size, read_timeout, buffering)."""
    given = {name: value for name, value in changes.items() if value is not None}

    def edit(site):
        return given
    return edit


def tls(cert=None, key=None, *, listen=None, redirect=None, hsts=None, reload=False,
        off=False):
    """The edit of an app's certificate: a new pair (``cert``, ``key``), its options, the
    same files read again (``reload``: after a renewal), or none (``off``)."""
    def edit(site):
        if off:
            return {"tls": None}
        current = site.tls
        if cert is None and current is None:
            raise UsageError("this app has no certificate yet: give --cert and --key")
        base = current or TLS(cert=cert, key=key)
        options = {"listen": listen, "redirect": redirect, "hsts": hsts}
        new = dataclasses.replace(base, **{k: v for k, v in options.items() if v is not None})
        if cert is not None:
            new = dataclasses.replace(new, cert=cert, key=key)
        if new == current and not reload:
            return {}
        if cert is not None or reload:  # read (again): resolve() checks and digests them
            new = dataclasses.replace(new, digest="")
        return {"tls": new}
    return edit


def describe(old, new) -> str:
    """What changed between two sites, for the action log and the command's line."""
    said = []
    for field in dataclasses.fields(old):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if before != after:
            said.append(f"{field.name} {_short(before)} -> {_short(after)}")
    return "; ".join(said) or "nothing changed"


def _short(value) -> str:
    if isinstance(value, TLS):
        return f"{value.cert} on {value.listen}"
    if isinstance(value, tuple):
        return ", ".join(value) or "none"
    return "none" if value is None else str(value)
