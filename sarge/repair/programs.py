"""Program files (``etc/supervisor.d/ID.conf``) rendered again from the records."""

from __future__ import annotations

import configparser
import os

from ..errors import SupervisorError
from ..files import write_file
from ..supervisord import states as process_states
from .findings import read

#: How a program's command named the launcher before 0.2 (still there, as a shim).
_LAUNCHER_BEFORE_0_2 = (" -m sarge.supervisord.launch ", " -m sarge.launch ")

#: Values sound but written by an earlier sarge: before a type's stop signal went to its
#: main process alone, it went to the whole process group.
_EARLIER_VALUES = {("stopasgroup", "true")}

#: Keys of a program section whose values come from the settings of the day.
_SETTINGS_KEYS = {"startsecs", "startretries", "stopwaitsecs", "stdout_logfile_maxbytes",
                  "stdout_logfile_backups"}


def repair_programs(home, findings, records: dict, states: dict) -> None:
    """Render again each damaged program file of ``records``; one that starts at boot
    when supervisord runs it now or it is its app's current instance (``states``)."""
    running = home.lifecycle.states()  # None: supervisord is down
    currents = {s.current for s in states.values()}
    for instance_id, instance in records.items():
        path = home.program_path(instance_id)
        if not os.path.isdir(home.instance_dir(instance_id)):
            findings.manual(home.instance_dir(instance_id), "missing: a destroy was "
                            "interrupted, or the folder was removed by hand",
                            f"finish removing it with `sarge HOME destroy {instance_id}`")
            continue
        text, problem = read(path)
        if text is None and problem is None:
            # new writes the record, then the program; destroy removes the program
            # first, the record last: either, interrupted, leaves this
            findings.manual(path, "missing: a new or a deploy was interrupted before it "
                            "wrote it, or a destroy after it removed it (or it was removed "
                            "by hand)", f"repair leaves the instance as it is; remove it "
                            f"with `sarge HOME destroy {instance_id}` (the app's next deploy "
                            "removes one a deploy made and does not keep), or restore the "
                            "file from a backup")
            continue
        problem = problem or program_problem(
            text, home.lifecycle.program_file(instance, autostart=False).text)
        if problem is None:
            continue
        info = running.get(f"{instance_id}:web") if running is not None else None
        autostart = instance_id in currents or (
            info is not None and info["statename"] in process_states.RUNNING)
        file = home.lifecycle.program_file(instance, autostart)

        def fix(file=file, instance_id=instance_id, known=info is not None):
            write_file(file)
            if running is not None and not known:
                try:
                    home.supervisor.add(instance_id, file.path)
                except SupervisorError:
                    pass  # read when supervisord next starts
        findings.fix(path, problem, "rendered again from the record, "
                     + ("starting at boot" if autostart else "stopped at boot"), fix)


def program_problem(text, expected: str):
    """Why ``text`` is not a usable program file (``expected`` is how sarge renders it
    now, with autostart false), or None. Values that come from settings may differ,
    being numbers (a type's stop timeout too), the command may name the launcher as
    before 0.2, and a program may stop its type as an earlier sarge did (the stop signal
    to its whole process group); every other key must be as sarge writes it."""
    parser, wanted = configparser.RawConfigParser(), configparser.RawConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return f"damaged ({str(exc).splitlines()[0]})"
    wanted.read_string(expected)
    for section in wanted.sections():
        if not parser.has_section(section):
            return f"damaged (no [{section}])"
        for key, value in wanted.items(section):
            found = parser.get(section, key, fallback=None)
            if key == "autostart":
                ok = found in ("true", "false")
            elif key == "command":
                ok = found in (value, value.replace(*_LAUNCHER_BEFORE_0_2))
            elif key in _SETTINGS_KEYS:
                ok = found is not None and found.isdigit()
            else:
                ok = found == value or (key, found) in _EARLIER_VALUES
            if not ok:
                return f"damaged ([{section}] {key} is {found!r})"
    return None
