"""The ``sarge`` command line: parse, call one core function, print, exit.

``sarge HOME COMMAND ...``; the ``bin/sarge`` shortcut of a home fills in HOME.
Errors are one line on stderr (``sarge: ...``) and a non-zero exit status:

- 2 for a usage error: click's (an unknown command or option, a missing
  argument) and :class:`~sarge.errors.UsageError` (a bad name, id, JSON,
  ``--listen`` value);
- 7 when supervisord is not running (:class:`~sarge.errors.SupervisordNotRunning`),
  as ``supervisorctl`` exits;
- 1 for everything else: a refused or failed deploy, a failure, a bug.

Each :class:`~sarge.errors.SargeError` carries its status as ``exit_code``. A bug (an
exception no command foresaw) is one line too, ``sarge: internal error: ...``; its
traceback is appended to the home's ``var/log/sarge.log``, and printed with
``SARGE_DEBUG=1``. Everything printed shows control characters as ``?`` (:func:`.output.echo`).

The package: :mod:`.group` (the click group), the commands in :mod:`.instances` and
:mod:`.deploys`, :mod:`.output` (everything printed), :mod:`.context` (the home the
commands share), :mod:`.version`, and :mod:`.boundary` (an error becomes one line and
an exit status). The core never imports it.
"""

from __future__ import annotations

from .boundary import main
from .context import Context
from .group import cli

__all__ = ["Context", "cli", "main"]
