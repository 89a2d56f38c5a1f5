"""The routes a front-end was last given, as data: ``etc/nginx/routes.json``, a list of
``{"app", "instance", "listen", "port", "socket"}``; what ``repair`` reads to learn
which instance each app serves (no parsing of nginx's configuration)."""

from __future__ import annotations

import json

from ..errors import SargeError
from ..files import File, read_text, write_file


def save(path: str, routes: list) -> None:
    """Write ``routes`` to ``path``, atomically."""
    write_file(File(path, json.dumps(list(routes), indent=2, sort_keys=True) + "\n"))


def load(path: str):
    """The routes saved at ``path``: None when there is no file (a home from before
    sarge saved them), [] when it is not readable as routes."""
    try:
        text = read_text(path)
    except SargeError:  # not UTF-8: as damaged as unreadable JSON, below
        return []
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    return [r for r in data if isinstance(r, dict)
            and all(isinstance(r.get(k), str) for k in ("app", "instance", "listen"))]
