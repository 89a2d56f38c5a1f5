"""The ``sarge HOME COMMAND`` group, with every command of :mod:`.instances`,
:mod:`.deploys` and :mod:`.services`."""

from __future__ import annotations

import click

from . import deploys, instances, services, sites
from .context import Context
from .history import history
from .version import print_version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("home", type=click.Path(file_okay=False, dir_okay=True))
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=print_version,
              help="Print the versions of sarge, supervisor and nginx, and exit.")
@click.pass_context
def cli(ctx, home):
    """Run Python web apps under supervisord in the home folder HOME.

    Start with `sarge HOME init`, then use HOME/bin/sarge, which fills in HOME.
    """
    if isinstance(ctx.obj, Context):  # from main()
        ctx.obj.path = home
    else:  # cli.main(obj=make_home), or nothing
        ctx.obj = Context(home, ctx.obj if callable(ctx.obj) else None)


for _command in (*instances.COMMANDS, *deploys.COMMANDS, *sites.COMMANDS, history,
                 *services.COMMANDS):
    cli.add_command(_command)
