"""What the commands share: the fleet file (read on first use), and --hosts/--role."""

from __future__ import annotations

import click

from .. import fleetfile


class Options:
    """What the group was given: the fleet file, read on first use."""

    def __init__(self, path):
        self.path = path
        self._fleet = None

    @property
    def fleet(self):
        if self._fleet is None:
            self._fleet = fleetfile.load(self.path)
        return self._fleet

    def hosts(self, names, role):
        return self.fleet.select(names, role)


pass_options = click.make_pass_decorator(Options)


def selection(command):
    """--hosts and --role: which hosts of the fleet."""
    command = click.option("--role", metavar="ROLE",
                           help="Only the hosts with this role (fleet file: roles).")(command)
    return click.option("--hosts", "names", multiple=True, metavar="NAME[,NAME...]",
                        help="Only these hosts (names or host names; repeatable) "
                             "[default: all].")(command)
