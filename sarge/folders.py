"""The one table of a home's folders: their paths, modes, and what an app's user may not
change (see :mod:`sarge.layout`, which names the paths in them)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Folder:
    """One folder of a home: its path (relative, '/'-separated; "" is the home), its mode,
    and what an app's user may not change (see the module's docstring)."""

    name: str
    mode: int
    guarded: bool = True
    guarded_files: bool = False


#: Every folder ``init`` makes, parents first. What names an instance's port is private:
#: a local user who knew the next one could bind it first (sarge checks who holds it,
#: all the same).
FOLDERS = (
    Folder("", 0o755),
    Folder("etc", 0o755, guarded_files=True),
    Folder("etc/supervisor.d", 0o700, guarded_files=True),
    Folder("etc/apps", 0o700, guarded_files=True),
    Folder("etc/nginx", 0o755, guarded_files=True),
    Folder("var", 0o755),
    Folder("var/log", 0o750),
    Folder("var/log/failed", 0o750),
    Folder("var/run", 0o700),
    Folder("var/runtime", 0o711),
    Folder("var/sockets", 0o711),
    Folder("var/cache", 0o711),
    Folder("var/data", 0o755),
    Folder("var/instances", 0o700, guarded_files=True),
    Folder("var/ports", 0o700, guarded_files=True),
    Folder("var/apps", 0o755, guarded_files=True),
    Folder("var/envs", 0o755, guarded_files=True),
    Folder("var/nginx", 0o755),
    Folder("bin", 0o755, guarded_files=True),
)

#: Folders made on first use, guarded all the same.
LATER = (Folder("etc/apps/instances", 0o700, guarded_files=True),
         Folder("var/outbox", 0o700, guarded_files=True),
         # the operator's own nginx directives per app, and the apps' certificates
         Folder("etc/nginx/apps", 0o755, guarded_files=True),
         Folder("etc/tls", 0o700, guarded_files=True),
         # ACME's HTTP challenges (certbot --webroot) and the maintenance pages: nginx's
         # workers read them
         Folder("var/acme", 0o755, guarded_files=True),
         Folder("var/maintenance", 0o755, guarded_files=True),
         # the links nginx connects through to an app on $SARGE_SOCKET: a switch moves
         # them, and needs no reload of nginx
         Folder("var/front", 0o755, guarded_files=True),
         # backing services' configurations (0640, in their app user's group: the
         # password is in there) and records (sarge.services.store)
         Folder("etc/services", 0o711, guarded_files=True),
         Folder("var/services", 0o700, guarded_files=True))
