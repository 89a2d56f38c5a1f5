"""sarge-fleet: one machine drives the sarge homes of many hosts over SSH.

An optional part of sarge (``pip install 'sarge-deploy[fleet]'``: Fabric 3); the
rest of sarge never imports it, and it uses sarge on the hosts only through their
``HOME/bin/sarge ... --json``: it is a remote client.

:mod:`.fleetfile` (``fleet.toml``: hosts, SSH options, rollout settings),
:mod:`.waves` (hosts at a time), :mod:`.remote` (one host over SSH: Fabric),
:mod:`.pack` (the source, packed once), :mod:`.lock` (one rollout at a time),
:mod:`.rollout` (deploy and rollback in waves), :mod:`.status`, :mod:`.broadcast`
(``run`` and ``config`` on many hosts), :mod:`.bootstrap` (sarge onto a fresh host),
and :mod:`.cli`, the ``sarge-fleet`` command line, the only one of them that prints.
"""
