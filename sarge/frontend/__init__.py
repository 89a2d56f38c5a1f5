"""The front-end: see :mod:`sarge.frontend.base`; :func:`frontend_for` picks the kind the
settings name."""

from .base import Drain, Frontend
from .own import OwnNginx
from .system import SystemNginx

__all__ = ["Drain", "Frontend", "OwnNginx", "SystemNginx", "frontend_for"]


def frontend_for(layout, supervisor, settings, **options) -> Frontend:
    """The front-end ``settings`` ask for (``[frontend] mode``), with ``options`` (see
    :class:`Frontend`)."""
    kind = SystemNginx if settings.frontend == "system" else OwnNginx
    return kind(layout, supervisor, settings, **options)
