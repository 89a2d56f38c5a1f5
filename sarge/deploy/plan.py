"""What a deploy will do to an app's state, checked before anything is made."""

from __future__ import annotations

from ..apps import listen_port
from ..errors import DeployError, UsageError
from ..ports import can_bind as _can_bind


def can_bind(listen: str) -> bool:
    """True when nothing listens on the front-end address ``listen`` yet."""
    return _can_bind(listen.rpartition(":")[0].strip("[]"), listen_port(listen))


def plan(switch, settings, app, listen, check, timeout, can_bind=can_bind):
    """(the app's state now, as this deploy will leave it); refuse what cannot be: no
    front-end address the first time, one in the instances' port range, another app's,
    or one that something else listens on."""
    old = switch.state(app)
    state = old.replace(listen=listen or old.listen, check=check or old.check,
                        timeout=timeout or old.timeout)
    if state.listen is None:
        raise UsageError(f"the first deploy of {app} needs --listen HOST:PORT, the "
                         "address its front-end listens on")
    port = listen_port(state.listen)
    if settings.port_first <= port <= settings.port_last:
        raise UsageError(f"--listen {state.listen}: port {port} is in the range the home "
                         f"gives its instances ({settings.port_first}-{settings.port_last})"
                         "; choose a port outside it")
    for other in switch.states():
        if other.name != state.name and other.listen and listen_port(other.listen) == port:
            raise UsageError(f"--listen {state.listen}: port {port} is already the "
                             f"front-end of the app {other.name}")
    if (state.listen != old.listen or old.current is None) and not can_bind(state.listen):
        # a refused deploy (1), not a usage error: the address itself is good
        raise DeployError(f"--listen {state.listen}: something on this machine already "
                          "listens there")
    return old, state
