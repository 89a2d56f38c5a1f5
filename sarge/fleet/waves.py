"""Rollout waves: the hosts, so many at a time."""

from __future__ import annotations

import math

from .fleetfile import parse_limit


def wave_size(limit, count: int) -> int:
    """How many of ``count`` hosts one wave holds under ``limit`` (``3``, ``"25%"``)."""
    kind, n = parse_limit(limit)
    size = math.ceil(count * n / 100) if kind == "percent" else n
    return max(1, min(size, count))


def waves(hosts, limit) -> list:
    """``hosts`` in order, cut into waves of :func:`wave_size`."""
    hosts = list(hosts)
    size = wave_size(limit, len(hosts)) if hosts else 1
    return [hosts[i:i + size] for i in range(0, len(hosts), size)]
