"""The launcher supervisord runs for each process:
``python -I -m sarge.supervisord.launch HOME ID TYPE`` (and
``python -I -m sarge.supervisord.launch --nginx PIDFILE NGINX ARGS`` for the front-end,
``python -I -m sarge.supervisord.launch --service HOME ID PROGRAM`` for a backing
service's: :mod:`sarge.services.launch`).

It builds the instance's environment (:mod:`sarge.environ`) at exec time and
replaces itself with the process's command (the folder's ``server``, or the
Procfile's line run by ``/bin/sh -c``, which execs it when it is a simple
command: :func:`sarge.commands.exec_form`), so the process supervisord
watches, signals and stops is the app itself. When supervisord runs as root,
it first switches to the app's user (:mod:`sarge.users`), after giving that
user the app's data and runtime folders.  On failure it writes one line
to stderr (the instance's log) and exits 127, as a shell does for a command
it cannot run.

Before it execs, it ends what a previous run of the same process left behind
when supervisord lost it (supervisord killed with SIGKILL leaves its children
running, holding their ports): each process's pid, which is also its process
group's id, is kept in a pid file, and the members of that group still alive from
before that are the instance's (its id in their environment; nginx: named nginx) get
SIGTERM (nginx: SIGQUIT), then SIGKILL.
"""

import os
import signal
import sys

from ..processes import instance_member, reap


def _is_nginx(proc) -> bool:
    return proc.name().startswith("nginx")


def stop_requested(home, instance_id: str, process: str) -> bool:
    """True when supervisord was told to stop this process while it was being started.

    A SIGTERM that reaches supervisord's child between its fork and its exec is
    lost (the child still runs supervisord's own signal handlers), and the stop
    would wait out the whole stopwaitsecs. supervisord marks the process
    STOPPING before it signals it, so asking once here, after the exec, closes
    that window: a stop that comes later finds this process able to receive it.
    """
    if not os.environ.get("SUPERVISOR_ENABLED"):
        return False
    from ..errors import SupervisorError

    try:
        info = home.supervisor.process(f"{instance_id}:{process}")
    except SupervisorError:
        return False
    return bool(info) and info["statename"] == "STOPPING"


def _write_pid(pidfile: str) -> None:
    tmp = f"{pidfile}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, pidfile)


def main(argv=None):
    from ..commands import execute, process_command
    from ..errors import SargeError
    from ..home import Home

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--nginx"] and len(args) > 2:
        # python -m sarge.supervisord.launch --nginx PIDFILE NGINX [ARGS...]
        # A reload (HUP) that comes while the old master is ended is moot: the nginx
        # exec'd next reads the newest configuration. Ignored, it cannot kill this process.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        reap(args[1], _is_nginx, signal.SIGQUIT)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.execv(args[2], args[2:])
    if args[:1] == ["--service"] and len(args) == 4:
        return _service(*args[1:])
    if len(args) not in (2, 3):
        sys.stderr.write(
            "usage: python -m sarge.supervisord.launch HOME INSTANCE_ID [PROCESS]\n")
        return 2
    home = Home(args[0])
    process = args[2] if len(args) == 3 else "web"
    try:
        if stop_requested(home, args[1], process):
            return 0
        command = process_command(home, home.settings, home.get(args[1]), process)
        os.makedirs(home.state_dir(args[1]), 0o700, exist_ok=True)
        pidfile = home.pid_path(args[1], process)
        reap(pidfile, instance_member(args[1]), timeout=home.settings.stopwaitsecs)
        _write_pid(pidfile)
        execute(command)  # as the app's user, when supervisord runs as root
    except SargeError as exc:
        sys.stderr.write(f"sarge: {exc}\n")
        return 127
    except OSError as exc:
        sys.stderr.write(f"sarge: cannot prepare {args[1]}:{process}: {exc}\n")
        return 127


def _service(path: str, service_id: str, program: str) -> int:
    """Exec a backing service's ``program`` (what a run before left is ended first)."""
    from ..errors import SargeError
    from ..home import Home
    from ..services import launch

    home = Home(path)
    try:
        argv, env, folder, user = launch.prepare(home, service_id, program)
        os.makedirs(home.state_dir(service_id), 0o700, exist_ok=True)
        pidfile = home.pid_path(service_id, program)
        reap(pidfile, launch.member(home, service_id), timeout=home.settings.stopwaitsecs)
        _write_pid(pidfile)
        launch.execute(argv, env, folder, user)
    except SargeError as exc:
        sys.stderr.write(f"sarge: {exc}\n")
    except OSError as exc:
        sys.stderr.write(f"sarge: cannot prepare {service_id}:{program}: {exc}\n")
    return 127


if __name__ == "__main__":
    sys.exit(main())
