"""``python -m sarge.fleet``: the ``sarge-fleet`` command line."""

from .cli import main

main()
