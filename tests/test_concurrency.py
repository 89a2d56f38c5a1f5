"""Concurrent commands on one home leave distinct ids and ports and a consistent home."""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import new, put_server, sarge


@pytest.mark.heavy
def test_twenty_concurrent_new_then_destroy(running):
    def make(_):
        return sarge(running, "new", '{"application_name": "web"}')

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(make, range(20)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    ids = [r.stdout.strip() for r in results]
    assert len(set(ids)) == 20
    ports = [running.get(i).port for i in ids]
    assert len(set(ports)) == 20
    assert sorted(os.listdir(os.path.join(running.path, "var", "ports"))) == sorted(
        str(p) for p in ports)
    known = running.supervisor.processes()
    assert all(known[i + ":web"]["statename"] == "STOPPED" for i in ids)
    listing = json.loads(sarge(running, "list", "--json", check=True).stdout)["instances"]
    assert sorted(r["id"] for r in listing) == sorted(ids)

    # start half of them at once, then destroy all at once
    for i in ids[:10]:
        put_server(running, i)
    with ThreadPoolExecutor(10) as pool:
        started = list(pool.map(lambda i: sarge(running, "start", i), ids[:10]))
    assert all(r.returncode == 0 for r in started), [r.stderr for r in started]
    assert all(running.supervisor.process(i + ":web")["statename"] == "RUNNING" for i in ids[:10])

    with ThreadPoolExecutor(20) as pool:
        destroyed = list(pool.map(lambda i: sarge(running, "destroy", i), ids))
    assert all(r.returncode == 0 for r in destroyed), [r.stderr for r in destroyed]
    assert json.loads(sarge(running, "list", "--json").stdout) == {"instances": []}
    assert os.listdir(os.path.join(running.path, "var", "ports")) == []
    assert os.listdir(os.path.join(running.path, "etc", "supervisor.d")) == []
    assert sorted(os.listdir(running.path)) == ["bin", "etc", "var"]
    assert set(running.supervisor.processes()) == {"sarge-crashwatch"}


def test_concurrent_start_and_stop_of_one_instance_end_consistent(running):
    instance_id = new(running)
    put_server(running, instance_id)
    commands = ["start", "stop"] * 5
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda c: sarge(running, c, instance_id), commands))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    state = running.supervisor.process(instance_id + ":web")["statename"]
    with open(running.program_path(instance_id)) as f:
        autostart = "autostart = true" in f.read()
    assert (state == "RUNNING") == autostart
