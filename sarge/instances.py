"""The instance store: each instance's record, folder and port, on disk.

``var/instances/ID.json`` is the record (:class:`~sarge.instance.Instance`),
``ID/`` the folder, ``var/ports/PORT`` the port (:class:`~sarge.ports.Ports`).
The store makes and removes them; it knows nothing of supervisord (see
:mod:`sarge.lifecycle`) nor of deploys. Writers hold the home's lock; an
instance's own lock (``var/run/ID/instance.lock``) serialises start, stop and destroy.
"""

from __future__ import annotations

import contextlib
import os

from .errors import HomeError, InstanceNotFound, UsageError
from .files import File, locked, read_text, remove_tree, write_file
from .instance import Instance, check_app_name, check_id, new_id, utcnow
from .ports import Ports


class InstanceStore:
    """The instances of the home whose paths ``layout`` gives; ``settings`` is a callable
    returning its settings (read when first needed); ``port_is_free`` checks a port
    before it is handed out."""

    def __init__(self, layout, settings, *, port_is_free=None):
        self.layout = layout
        self._settings = settings
        self.port_is_free = port_is_free

    def lock(self):
        """The home's lock (``var/run/sarge.lock``): held by whoever changes the store."""
        return locked(self.layout.home_lock_path)

    # -- reading ---------------------------------------------------------------------------

    def get(self, instance_id) -> Instance:
        """The instance with this id, or :class:`InstanceNotFound`."""
        self.layout.check()
        path = self.layout.record_path(check_id(instance_id))
        text = read_text(path)
        if text is None:
            raise InstanceNotFound(instance_id)
        return Instance.from_json(text, path)

    def all(self) -> list:
        """Every instance of the home, oldest first."""
        self.layout.check()
        found = []
        folder = self.layout.records_dir
        for name in os.listdir(folder):
            if name.endswith(".json") and not name.startswith("."):
                text = read_text(os.path.join(folder, name))
                if text is not None:
                    found.append(Instance.from_json(text, os.path.join(folder, name)))
        return sorted(found, key=lambda i: (i.created, i.id))

    def log_path(self, instance_id, process: str = "web") -> str:
        """The log file of one process type of an instance, which must have it."""
        instance = self.get(instance_id)
        if process not in instance.processes:
            raise UsageError(f"{instance.id} has no process {process!r} "
                             f"(it has: {', '.join(sorted(instance.processes))})")
        return self.layout.log_path(instance.id, process)

    # -- writing ---------------------------------------------------------------------------

    def create(self, application_name: str, origin: str = "new") -> Instance:
        """A new instance's folder, port and record (hold :meth:`lock`); what was made is
        removed again when any of it fails."""
        check_app_name(application_name)
        instance_id = self._make_folder(application_name)
        port = None
        try:
            port = self.ports().allocate(instance_id)
            instance = Instance(instance_id, application_name, port, utcnow(), origin=origin)
            os.makedirs(self.layout.data_dir(application_name), exist_ok=True)
            os.makedirs(self.layout.state_dir(instance_id), 0o700, exist_ok=True)
            with locked(self.layout.instance_lock_path(instance_id)):  # made once, now
                pass
            self.save(instance)
        except BaseException:
            self.remove(instance_id, port)
            raise
        return instance

    def save(self, instance: Instance) -> None:
        """Write the instance's record, atomically."""
        write_file(File(self.layout.record_path(instance.id), instance.to_json()))

    def _make_folder(self, application_name) -> str:
        for _ in range(100):
            instance_id = new_id(application_name)
            try:
                # As root, private until start or deploy shares it with the app's user.
                os.mkdir(self.layout.instance_dir(instance_id),
                         0o700 if os.geteuid() == 0 else 0o755)
                return instance_id
            except FileExistsError:
                continue
        raise HomeError(f"could not find a free id for {application_name}")  # pragma: no cover

    def ports(self) -> Ports:
        settings = self._settings()
        return Ports(self.layout.ports_dir, settings.port_first, settings.port_last,
                     is_free=self.port_is_free,
                     owner_exists=lambda owner: os.path.exists(self.layout.port_owner_path(owner)),
                     settings_path=self.layout.settings_path)

    def remove(self, instance_id, port=None) -> list:
        """Remove what an instance left on disk, its record last; each step may be redone.

        Return what could not be removed (:func:`~sarge.files.remove_tree`'s report: what
        its app's user made too deep or too big, say): the port and the record are then
        kept, so that the instance is still listed, and a later destroy (or deploy's
        clean-up) finds it and finishes the job."""
        layout = self.layout
        for path in (layout.program_path(instance_id), layout.instance_config_path(instance_id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        left = []
        for folder in (layout.instance_dir(instance_id), layout.runtime_dir(instance_id),
                       os.path.dirname(layout.app_socket(instance_id))):
            left += remove_tree(folder)
        for name in os.listdir(layout.log_dir):
            if name.startswith(instance_id + "."):  # ID.log, ID.log.1, ID.worker.log, ...
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(layout.log_dir, name))
        if left:
            return left
        if port is not None:  # and those of its scaled web processes
            self.ports().release_all(instance_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.record_path(instance_id))
        # last: it holds the instance's lock, which a waiting caller then takes and
        # finds the record gone
        return remove_tree(layout.state_dir(instance_id))

    @contextlib.contextmanager
    def instance_lock(self, instance_id):
        """Hold the lock of one instance; raise :class:`InstanceNotFound` if it is gone
        meanwhile. The lock is a file of its own (``var/run/ID/instance.lock``), never one that
        an atomic write replaces: a later caller would lock the new file and not wait."""
        path = self.layout.record_path(check_id(instance_id))
        if not os.path.exists(path):
            raise InstanceNotFound(instance_id)
        os.makedirs(self.layout.state_dir(instance_id), 0o700, exist_ok=True)
        with locked(self.layout.instance_lock_path(instance_id)):
            if not os.path.exists(path):  # destroyed while we waited
                raise InstanceNotFound(instance_id)
            yield
