"""What the commands share: the home, made on first use, and a deployer that reports
its steps on stderr."""

from __future__ import annotations

import sys

import click

from .output import progress


class Context:
    """The home at ``path``, made on first use by ``make_home`` (default: a
    :class:`~sarge.home.Home`). :func:`~sarge.cli.main` makes one and hands it to the
    click group, which fills in ``path``; so it still knows the home when a command
    fails."""

    def __init__(self, path=None, make_home=None):
        self.path = path
        self._make_home = make_home or _default_make_home
        self._home = None

    @property
    def home(self):
        if self._home is None:
            self._home = self._make_home(self.path)
        return self._home

    def deployer(self):
        """A :class:`~sarge.deploy.Deployer` of the home, printing its progress."""
        from ..deploy import Deployer

        return Deployer(self.home, progress=progress, ask=_ask if _terminal() else None)


def _terminal() -> bool:
    """Whether the operator is on a terminal, to be asked."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stderr))


def _ask(question: str) -> bool:
    """A yes or no on the operator's terminal (a second ^C is a no)."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        return False


def _default_make_home(path):
    from ..home import Home

    return Home(path)


pass_home = click.make_pass_decorator(Context)
