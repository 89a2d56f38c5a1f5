"""Something done on many hosts at once, one thread per host."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..errors import FleetError


def each(items, work, workers: int = 64) -> list:
    """``work(item)`` for every item at once (``workers`` at most): a list of (item,
    result, error) in ``items``' order, ``error`` a :class:`~sarge.errors.FleetError`
    ``work`` raised (another exception is a bug, and raised here)."""
    items = list(items)
    if not items:
        return []

    def guarded(item):
        try:
            return item, work(item), None
        except FleetError as exc:
            return item, None, exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(guarded, items))
