"""The launcher supervisord runs for each process: ``python -m sarge.launch HOME ID TYPE``
(and ``python -m sarge.launch --nginx PIDFILE NGINX ARGS`` for the front-end).

It builds the instance's environment (:mod:`sarge.environ`) at exec time and
replaces itself with the process's command (the folder's ``server``, or the
Procfile's line run by ``/bin/sh -c``), so the process supervisord
watches, signals and stops is the app itself.  On failure it writes one line
to stderr (the instance's log) and exits 127, as a shell does for a command
it cannot run.
"""

import os
import sys


def reap_nginx(pidfile: str, timeout: float = 10.0) -> None:
    """End what is left of an nginx whose master supervisord lost (killed with SIGKILL, or
    a supervisord that was killed): its workers would keep the front-end's ports.

    The old master's pid is its process group's id, shared by its workers: the
    group gets QUIT (finish the requests in hand), then KILL after ``timeout``.
    """
    import signal
    import time

    try:
        with open(pidfile) as f:
            group = int(f.read().strip())
    except (OSError, ValueError):
        return
    if group <= 1 or group == os.getpgid(0):
        return
    try:
        os.killpg(group, signal.SIGQUIT)
    except OSError:
        return  # nothing left of it
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except OSError:
            return
        time.sleep(0.05)
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass


def main(argv=None):
    from .errors import SargeError
    from .home import Home

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--nginx"] and len(args) > 2:
        # python -m sarge.launch --nginx PIDFILE NGINX [ARGS...]
        reap_nginx(args[1])
        os.execv(args[2], args[2:])
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
