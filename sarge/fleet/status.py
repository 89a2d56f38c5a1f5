"""``sarge-fleet status``: every host's apps, from its home's ``list`` and ``history``."""

from __future__ import annotations

from ..errors import HostUnreachable
from .parallel import each
from .remote import Remote


def version_of(records, instance_id) -> str | None:
    """What the deploy that made ``instance_id`` deployed, from the host's history: the
    archive's SHA-256 (its first 12 digits) or the folder's git revision."""
    for record in reversed(records):
        if record.get("to") == instance_id and record.get("action") == "deploy" \
                and record.get("outcome") == "ok":
            identity = record.get("source_identity") or {}
            for key in ("sha256", "git", "tree_sha256"):
                if identity.get(key):
                    return identity[key][:12]
    return None


def fleet_status(fleet, hosts, app=None, remote=Remote) -> list:
    """A row per host and app (``app`` only, if given): host, app, the current instance,
    its state, its version, how many instances; a host that does not answer is a row of
    its own, ``error`` saying why."""

    def one(host):
        r = remote(host, fleet.ssh)
        try:
            listing = r.sarge_json("list", "--json")["instances"]
            try:  # the versions: an older sarge without history shows none, not an error
                history = r.sarge_json("history", "--json", "-n", "200")["records"]
            except HostUnreachable:
                history = []
        finally:
            r.close()
        apps = sorted({row["application_name"] for row in listing} | ({app} if app else set()))
        rows = []
        for name in apps if app is None else [app]:
            mine = [row for row in listing if row["application_name"] == name]
            current = next((row for row in mine if row["role"] == "current"), None)
            rows.append({"host": host.name, "address": host.address, "app": name,
                         "current": current and current["id"],
                         "state": current["state"] if current else "-",
                         "version": current and version_of(history, current["id"]),
                         "instances": len(mine), "error": None})
        return rows or [{"host": host.name, "address": host.address, "app": None,
                         "current": None, "state": "-", "version": None, "instances": 0,
                         "error": None}]

    rows = []
    for host, found, error in each(hosts, one):
        rows += found if error is None else [
            {"host": host.name, "address": host.address, "app": app, "current": None,
             "state": "unreachable", "version": None, "instances": None,
             "error": str(error)}]
    return rows
