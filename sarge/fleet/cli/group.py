"""The ``sarge-fleet`` group: the fleet file, and every command."""

from __future__ import annotations

import os

import click

from . import hosts, rollouts
from .options import Options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--fleet", "path", metavar="PATH", envvar="SARGE_FLEET",
              default="fleet.toml", show_default=True,
              help="The fleet file (also $SARGE_FLEET).")
@click.pass_context
def fleet_cli(ctx, path):
    """Drive the sarge homes of many hosts over SSH, as the fleet file describes them.

    \b
    sarge-fleet status                         every host's apps
    sarge-fleet deploy ./app --app web         a rollout, in waves
    sarge-fleet rollback web                   back, in waves
    sarge-fleet run web1 -- list               any sarge command, on a host
    sarge-fleet config web KEY=VALUE           an app's variables, everywhere
    sarge-fleet bootstrap                      sarge onto fresh hosts
    """
    ctx.obj = Options(os.path.abspath(path))


for _command in (*rollouts.COMMANDS, *hosts.COMMANDS):
    fleet_cli.add_command(_command)
