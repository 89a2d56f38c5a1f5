"""sarge HOME undeploy NAME: an app removed for real (its route off nginx, its instances,
state, variables and environments gone), while another app keeps serving."""

import json
import os
import time

from .conftest import deploy, front, listen_port, sarge
from .test_deploy import Load, instances
from .test_users import in_a_terminal


def environments(h):
    return [n for n in os.listdir(h.envs_dir) if not n.startswith(".")]


def two_apps(h, webapp):
    """Apps ``web`` and ``other`` deployed from ``webapp`` (other with its own
    requirements, so its own virtualenv), each on its own front-end port."""
    deploy(h, webapp, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}", check=True)
    deploy(h, webapp, "--app", "web", check=True)  # a previous one, kept for rollback
    other = webapp.parent / "other"
    other.mkdir()
    for name in ("app.py", "Procfile", "VERSION"):
        (other / name).write_bytes((webapp / name).read_bytes())
    (other / "requirements.txt").write_text("gunicorn\nsix\n")
    deploy(h, other, "--app", "other", "--listen", f"127.0.0.1:{listen_port(1)}", check=True)


def test_undeploy_removes_an_app_and_the_other_keeps_serving(running, webapp):
    two_apps(running, webapp)
    sarge(running, "config", "web", "KEY=value", check=True)
    os.makedirs(running.data_dir("web"), exist_ok=True)
    (open(os.path.join(running.data_dir("web"), "db"), "w")).close()
    assert len(environments(running)) == 2
    with Load(listen_port(1), clients=4) as load:
        time.sleep(0.3)
        result = sarge(running, "undeploy", "web")
        time.sleep(0.3)
    assert result.returncode == 0, result.stderr
    assert load.failures == [] and load.ok > 20, (load.ok, load.failures[:5])
    assert "web undeployed: 2 instance(s) destroyed" in result.stderr
    assert f"127.0.0.1:{listen_port()} no longer served" in result.stderr
    assert "its data is kept in" in result.stderr
    for step in ("route", "destroy", "clean up"):
        assert step in result.stderr, step

    assert [i["application_name"] for i in instances(running)] == ["other"]
    assert front(listen_port(1))[0] == 200
    try:
        front(listen_port(), timeout=2)
        raise AssertionError("nginx still listens on the undeployed app's address")
    except ConnectionRefusedError:
        pass
    assert not os.path.exists(running.app_state_path("web"))
    assert not os.path.exists(running.app_config_path("web"))
    assert len(environments(running)) == 1  # web's environment went, other's stayed
    assert os.path.exists(os.path.join(running.data_dir("web"), "db"))
    routes = json.load(open(running.routes_path))
    assert [r["app"] for r in routes] == ["other"]
    assert "undeploy web" in open(running.action_log).read()

    # again: there is nothing left of it but its data; the data only with --data --yes
    refused = sarge(running, "undeploy", "web", "--data")  # no terminal, no --yes
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert os.path.exists(os.path.join(running.data_dir("web"), "db"))
    result = sarge(running, "undeploy", "web", "--data", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"app": "web", "route": None, "instances": [],
                                         "environments": 0, "data": True, "services": []}
    assert not os.path.exists(running.data_dir("web"))
    gone = sarge(running, "undeploy", "web")
    assert gone.returncode == 1 and gone.stderr == "sarge: the home has no app named web\n"
    assert front(listen_port(1))[0] == 200


def test_undeploy_of_a_bad_name_changes_nothing(running):
    for name in ("../etc", "Web", ""):
        result = sarge(running, "undeploy", name, "--data", "--yes")
        assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_undeploy_with_data_asks_on_a_terminal(running, webapp):
    deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}",
           check=True)
    os.makedirs(running.data_dir("web"), exist_ok=True)
    command = f"{running.path}/bin/sarge undeploy web --data; echo EXIT=$?"
    out, _ = in_a_terminal(command, then=b"n\r", after=b"for good?")
    assert "Remove web and its data in" in out and "EXIT=130" in out, out
    assert os.path.isdir(running.data_dir("web")) and front(listen_port())[0] == 200
    out, _ = in_a_terminal(command, then=b"y\r", after=b"for good?")
    assert "web undeployed: 1 instance(s) destroyed" in out and "EXIT=0" in out, out
    assert not os.path.exists(running.data_dir("web"))
