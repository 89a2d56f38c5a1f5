"""The kinds of backing services, by name: ``redis``, ``memcached``, ``rabbitmq``."""

from __future__ import annotations

from ..errors import UsageError
from .memcached import Memcached
from .rabbitmq import RabbitMQ
from .redis import Redis

KINDS = {kind.name: kind for kind in (Redis(), Memcached(), RabbitMQ())}


def get(name):
    """The kind called ``name``, or :class:`UsageError` naming those there are."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown service {name!r}: sarge runs "
                         f"{', '.join(sorted(KINDS))}") from None
