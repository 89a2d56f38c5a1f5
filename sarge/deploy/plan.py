"""What a deploy (or a change of an app's site) will do to an app's state, checked before
anything is made."""

from __future__ import annotations

from ..apps import listen_port
from ..errors import DeployError, UsageError
from ..ports import can_bind as _can_bind
from ..site import conflict, listens

#: Where an app with domains listens when no --listen is given.
DOMAINS_LISTEN = "0.0.0.0:80"


def can_bind(listen: str) -> bool:
    """True when nothing listens on the front-end address ``listen`` yet."""
    return _can_bind(listen.rpartition(":")[0].strip("[]"), listen_port(listen))


def plan(switch, settings, app, listen, check, timeout, can_bind=can_bind, site=None,
         scale=None):
    """(the app's state now, as this deploy will leave it); ``site``: changes to its
    :class:`~sarge.site.Site`; ``scale``: its process counts (None: as they are).
    Refuses what cannot be (:func:`check_front`)."""
    old = switch.state(app)
    new_site = old.site.replace(**site) if site else old.site
    state = old.replace(listen=listen or old.listen, check=check or old.check,
                        timeout=timeout or old.timeout, site=new_site,
                        scale=old.scale if scale is None else scale)
    if state.listen is None and new_site.domains:
        state = state.replace(listen=DOMAINS_LISTEN)
    if state.listen is None:
        raise UsageError(f"the first deploy of {app} needs --listen HOST:PORT (or a "
                         "--domain), the address its front-end listens on")
    check_front(switch, settings, old, state, can_bind)
    return old, state


def check_front(switch, settings, old, state, can_bind=can_bind) -> None:
    """Refuse a front-end address in the instances' port range, another app's (unless
    both have their own domains on it: :func:`sarge.site.conflict`), or one that
    something else listens on (sarge's own nginx: the machine's may hold it already)."""
    states = [o for o in switch.states() if o.name != state.name and o.listen]
    others = [(o.name, o.listen, o.site) for o in states]
    for address, _tls in listens(state.listen, state.site):
        port = listen_port(address)
        if settings.port_first <= port <= settings.port_last:
            raise UsageError(f"--listen {address}: port {port} is in the range the home "
                             f"gives its instances ({settings.port_first}-"
                             f"{settings.port_last}); choose a port outside it")
    problem = conflict(state.name, state.listen, state.site, others)
    if problem:
        raise UsageError(f"--listen {state.listen}: {problem}")
    if settings.frontend == "system":
        return  # the machine's nginx holds its ports already: its own test says the rest
    served = {address for o in states if o.current for address, _ in listens(o.listen, o.site)}
    if old.current is not None:
        served.update(address for address, _ in listens(old.listen, old.site))
    for address, _tls in listens(state.listen, state.site):
        if address not in served and not can_bind(address):
            # a refused deploy (1), not a usage error: the address itself is good
            raise DeployError(f"--listen {address}: something on this machine already "
                              "listens there")
