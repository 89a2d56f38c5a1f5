"""The machine's nginx: sarge writes ``etc/nginx/sites.conf`` (server blocks only) for it
to include, and runs ``[frontend] test_command`` and ``reload_command``."""

from __future__ import annotations

import os
import shlex

from .. import render
from ..errors import FrontendError
from ..files import read_text, write_file
from . import sites
from .base import Drain, Frontend, _restore


class SystemNginx(Frontend):
    """The machine's nginx (see the module's docstring)."""

    def _apply(self, routes, links) -> Drain:
        path = self.layout.nginx_sites
        os.makedirs(os.path.dirname(path), exist_ok=True)
        old_text = read_text(path)
        new = render.nginx_sites(path, sites=sites.context(self.layout, routes, defaults=False))
        if new.text == old_text:
            links.swap()  # the links alone moved: nothing for nginx to load
            return Drain()
        write_file(new)
        links.swap()  # (a refused test puts them back, with the file)
        try:
            for name in ("test_command", "reload_command"):
                command = getattr(self.settings, name)
                try:
                    result = self.run(shlex.split(command), capture_output=True, text=True)
                except (OSError, ValueError) as exc:
                    raise FrontendError(f"[frontend] {name} `{command}` cannot run: "
                                        f"{exc}") from exc
                if result.returncode != 0:
                    output = (result.stderr or result.stdout).strip().splitlines()
                    raise FrontendError(f"[frontend] {name} `{command}` failed: "
                                        f"{output[-1] if output else result.returncode}")
        except BaseException:
            _restore(path, old_text)
            raise
        # The machine's nginx workers are not ours to watch: give them a fixed grace.
        return Drain(grace=2.0)
