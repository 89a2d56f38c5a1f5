"""The launcher supervisord runs for each process: ``python -m sarge.launch HOME ID TYPE``.

It builds the instance's environment (:mod:`sarge.environ`) at exec time and
replaces itself with the process's command (the folder's ``server``, or the
Procfile's line run by ``/bin/sh -c``), so the process supervisord
watches, signals and stops is the app itself.  On failure it writes one line
to stderr (the instance's log) and exits 127, as a shell does for a command
it cannot run.
"""

import os
import sys


def main(argv=None):
    from .errors import SargeError
    from .home import Home

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        sys.stderr.write("usage: python -m sarge.launch HOME INSTANCE_ID [PROCESS]\n")
        return 2
    try:
        command = Home(args[0]).process_command(*args[1:])
    except SargeError as exc:
        sys.stderr.write(f"sarge: {exc}\n")
        return 127
    os.chdir(command.cwd)
    try:
        os.execvpe(command.argv[0], command.argv, command.env)
    except OSError as exc:
        sys.stderr.write(f"sarge: cannot run {command.argv[0]}: {exc.strerror}\n")
        return 127


if __name__ == "__main__":
    sys.exit(main())
