"""``sarge HOME repair``: rebuild damaged state from what is still true.

sarge writes every state file atomically, but a disk that lies about fsync,
a full disk, or an operator's editor can still leave one empty, cut short or
missing. Each file is rebuilt only from facts that outlive it:

``var/instances/ID.json`` (an instance's record)
    the id (the file's name), the app (the id's prefix), the port (the
    ``var/ports/PORT`` link naming the id), the processes (the instance
    folder's Procfile or ``server``), the virtualenv (content-addressed: the
    folder's ``requirements.txt`` names it), the origin (a deploy made it when
    it has a frozen configuration or an app's state names it) and the creation
    time (the folder's). Only an instance that got that far is rebuilt: its
    folder, its port, and its program file, a deployed configuration or an
    app's state naming it. Less (a folder and a port a killed ``new`` left) is
    reported, not turned into an instance.
``etc/supervisor.d/ID.conf`` (its program)
    a damaged one is rendered again from the record; it starts at boot when
    supervisord runs it now or it is its app's current instance. A missing one
    is reported, and the instance left as it is: ``new`` (a deploy's first step)
    writes it just after the record, and ``destroy`` removes it first, so either,
    interrupted, leaves a record without a program; ``destroy`` removes the rest.
``var/apps/APP.json`` (an app's deploy state)
    the front-end address and current instance from the nginx configuration
    sarge wrote; the previous instances from the records: those a deploy made
    before the current one, newest first (a half-made newer one is left for the
    next deploy to remove).
``etc/apps/APP.json`` (an app's variables)
    the copy its current instance was deployed with.
``etc/supervisord.conf``, ``bin/*``
    generated again, as ``init`` does.
``etc/services/ID.conf``, ``etc/supervisor.d/svc.*.conf`` (a backing service's)
    rendered again from the service's record (``var/services/ID.json``); a
    service that supervisord does not run is started again.

What cannot be rebuilt (``etc/sarge.toml``, an app's variables with no
deployed copy, what is left of an instance too incomplete to identify) is
reported with what to do. Nothing is ever removed.

The package: :mod:`.findings` (what was found, and the one place that repairs),
:mod:`.records`, :mod:`.apps`, :mod:`.programs`, :mod:`.variables` and :mod:`.services`,
one per kind of state file, in the order :class:`Repair` runs them.
"""

from __future__ import annotations

import os

from ..errors import SargeError
from ..files import write_file
from ..layout import FOLDERS
from .apps import readable_states, rebuild_states
from .findings import Finding, Findings, read
from .programs import repair_programs
from .records import Records
from .services import repair_services
from .variables import repair_app_configs, repair_instance_configs

__all__ = ["Finding", "Repair"]


class Repair:
    """Finds (and, unless ``dry_run``, repairs) the damaged state of ``home``."""

    def __init__(self, home, dry_run: bool = False):
        self.home = home
        self.dry_run = dry_run

    def run(self) -> list:
        """Check everything, repair what can be; return the :class:`Finding` list."""
        home = self.home
        findings = Findings(home, self.dry_run)
        try:
            home.settings
        except SargeError as exc:
            findings.manual(home.settings_path, str(exc), "fix the file by hand (sarge never "
                            "rewrites it); `sarge HOME init` writes a fresh one if you remove it")
            return findings.all
        with home.lock():
            _generated(home, findings)
            states = readable_states(home)  # and those rebuilt, even in a dry run
            found = Records(home, findings, states)
            records = found.scan()
            rebuild_states(home, findings, states, records, found.born)
            repair_programs(home, findings, records, states)
            repair_app_configs(home, findings, states)
            repair_instance_configs(home, findings, records)
            repair_services(home, findings)
        return findings.all


def _generated(home, findings) -> None:
    """The home's folders and the files ``init`` generates, made again as it makes them."""
    for folder in FOLDERS:  # the home's one table of folders (sarge.layout)
        path = home.folder(folder.name)
        if not os.path.isdir(path):
            findings.fix(path, "missing", f"made again, mode {folder.mode:04o}",
                         lambda p=path, m=folder.mode: (os.makedirs(p, m, exist_ok=True),
                                                        os.chmod(p, m)))
    for file in home.generated_files():
        if read(file.path)[0] != file.text:
            findings.fix(file.path, "missing or not as sarge generates it",
                         "generated again", lambda file=file: write_file(file))
