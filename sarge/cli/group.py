"""The ``sarge HOME COMMAND`` group, with every command of :mod:`.instances`,
:mod:`.deploys`, :mod:`.sites` and :mod:`.services`; and ``sarge validate|package ...``,
the commands of :mod:`.packaging`, which need no home: :class:`Sarge` hands a command
line whose first word names one of them to that group (a home folder named ``validate``
is ``./validate``); ``sarge HOME validate ...`` (a home's ``bin/sarge``) runs them too,
without reading the home."""

from __future__ import annotations

import sys

import click

from . import deploys, instances, scale, services, sites
from .context import Context
from .history import history
from .packaging import tools
from .version import print_version


class Sarge(click.Group):
    """The click group of ``sarge HOME COMMAND``; ``sarge validate ...`` and ``sarge
    package ...`` go to :data:`~.packaging.tools` instead, and its help lists them."""

    def main(self, args=None, *rest, **kwargs):
        args = list(sys.argv[1:] if args is None else args)
        if args and args[0] in tools.commands:
            kwargs.pop("obj", None)  # no home
            return tools.main(args, *rest, **kwargs)
        return super().main(args, *rest, **kwargs)

    def get_command(self, ctx, name):
        # HOME/bin/sarge validate ...: the home is filled in, and not needed
        return super().get_command(ctx, name) or tools.commands.get(name)

    def format_commands(self, ctx, formatter):
        super().format_commands(ctx, formatter)
        rows = [(f"{name} ...", command.get_short_help_str(60))
                for name, command in sorted(tools.commands.items())]
        with formatter.section("Commands without a home (sarge COMMAND ...)"):
            formatter.write_dl(rows)


@click.group(cls=Sarge, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("home", type=click.Path(file_okay=False, dir_okay=True))
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=print_version,
              help="Print the versions of sarge, supervisor and nginx, and exit.")
@click.pass_context
def cli(ctx, home):
    """Run Python web apps under supervisord in the home folder HOME.

    Start with `sarge HOME init`, then use HOME/bin/sarge, which fills in HOME.
    Before a deploy, `sarge validate SOURCE` checks an app and `sarge package
    SOURCE -o FILE` packs it: they need no home.
    """
    if isinstance(ctx.obj, Context):  # from main()
        ctx.obj.path = home
    else:  # cli.main(obj=make_home), or nothing
        ctx.obj = Context(home, ctx.obj if callable(ctx.obj) else None)


for _command in (*instances.COMMANDS, *deploys.COMMANDS, *sites.COMMANDS, *scale.COMMANDS,
                 history, *services.COMMANDS):
    cli.add_command(_command)
