"""The fast tier of deploy, route and rollback: each branch, in milliseconds.

A real :class:`~sarge.home.Home` in a temporary folder (real files, real ports, real
locks) with the fakes of :mod:`tests.fakes` for supervisord, the apps, nginx, the
virtualenvs and the clock. What the fakes stand for is tested with real processes in
test_deploy.py; here, what sarge decides: which instance serves, which are kept, what
a failure leaves.
"""

import io
import os
import sys
import tarfile

import pytest

from sarge.errors import DeployError, FrontendError, SargeError, UsageError
from sarge.site import Site

from .conftest import get, port_base, state_files
from .fakes import Rig

pytestmark = pytest.mark.fast

LISTEN = f"127.0.0.1:{port_base() + 990}"  # never bound: the front-end is a fake
OTHER_LISTEN = f"127.0.0.1:{port_base() + 991}"


@pytest.fixture
def rig(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    yield rig
    rig.close()


def state(rig, app="web"):
    return rig.deployer().state(app)


def serves(rig, instance_id, version):
    """The instance runs, and answers as the given version of the app."""
    assert rig.supervisor.state(instance_id + ":web") == "RUNNING"
    assert get(rig.home.get(instance_id).port) == (200, f"version {version} from {instance_id}\n")


def route_of(rig, app="web"):
    (route,) = [r for r in rig.frontend.routes if r["app"] == app]
    return route


def deploy(rig, source, version=None, **kwargs):
    if version is not None:
        (source / "VERSION").write_text(str(version))
    return rig.deployer().deploy(str(source), kwargs.pop("app", "web"), **kwargs)


def test_a_first_deploy_then_a_second(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    serves(rig, first.id, 1)
    assert [step for step, _ in rig.steps] == [
        "new instance", "unpack", "environment", "start", "health check", "switch", "drain",
        "clean up"]  # no release: the Procfile has none; no old instance to stop
    assert rig.frontend.routes == [{"app": "web", "instance": first.id, "listen": LISTEN,
                                    "port": first.port, "socket": None, "check": "/",
                                    "site": Site().to_dict()}]
    assert (state(rig).current, state(rig).previous, state(rig).listen) == (first.id, (), LISTEN)
    assert first.virtualenv == os.path.join(rig.home.envs_dir, rig.environments.names()[0])

    rig.steps.clear()
    second = deploy(rig, source, version=2)  # the address is remembered
    serves(rig, second.id, 2)
    assert "stop old" in [step for step, _ in rig.steps]
    assert ("environment", f"reused {os.path.basename(first.virtualenv)}, python "
            f"{'.'.join(map(str, sys.version_info[:3]))} ({sys.executable}; sarge's own)"
            ) in rig.steps
    assert route_of(rig)["instance"] == second.id
    assert (state(rig).current, state(rig).previous) == (second.id, (first.id,))
    # the first is stopped, and stays stopped at boot: in its file and in supervisord
    assert rig.supervisor.state(first.id + ":web") == "STOPPED"
    assert "autostart = false" in open(rig.home.program_path(first.id)).read()
    assert rig.supervisor.autostart[first.id] is False
    assert rig.frontend.drained[-1].replaced == rig.frontend.applied[-2]


def test_a_release_runs_before_the_start(rig, source):
    (source / "Procfile").write_text(
        "web: serve\nworker: work\nrelease: echo released > \"$SARGE_DATA_DIR/ran\"\n")
    instance = deploy(rig, source, listen=LISTEN)
    with open(os.path.join(rig.home.data_dir("web"), "ran")) as f:
        assert f.read() == "released\n"
    assert set(instance.processes) == {"web", "worker"}  # release is a step, not a process
    assert rig.supervisor.state(instance.id + ":worker") == "RUNNING"
    steps = [step for step, _ in rig.steps]
    assert steps.index("release") == steps.index("environment") + 1


def bad_archive(source):
    """An archive that is a readable tar, with a member that points out of the
    instance: refused by the unpack step itself."""
    path = source.parent / "bad.tar"
    with tarfile.open(path, "w") as tar:
        for name in os.listdir(source):
            tar.add(source / name, arcname=name)
        data = b"x"
        info = tarfile.TarInfo("../escaped")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def break_unpack(rig, source):
    return bad_archive(source)


def break_procfile(rig, source):
    (source / "Procfile").write_text("worker: work\n")


def break_install(rig, source):
    (source / "requirements.txt").write_text("no-such-package\n")
    rig.environments.fail = "pip install -r requirements.txt ... failed (exit status 1)"


def break_release(rig, source):
    (source / "Procfile").write_text("web: serve\nrelease: exit 3\n")


def break_manifest(rig, source):
    (source / "sarge-app.toml").write_text("[processes.web]\nstop_signal = \"KILL\"\n")


def break_start(rig, source):
    rig.supervisor.refuse_next_start("NO_FILE: no such file")


def break_health(rig, source):
    (source / "HEALTH").write_text("500")


def break_process(rig, source):
    (source / "EXIT").write_text("4")


def break_switch(rig, source):
    rig.frontend.fail = FrontendError("nginx refused the new configuration, which was "
                                      "not loaded: [emerg] test")


@pytest.mark.parametrize("breakage, step, message", [
    (break_unpack, "unpack", "points out of the instance"),
    (break_procfile, "environment", "no 'web' process"),
    (break_install, "environment", "failed (exit status 1)"),
    (break_release, "release", "the release command `exit 3` failed"),
    (break_manifest, "environment", "sarge-app.toml: processes.web.stop_signal must be one of"),
    (break_start, "start", "supervisord cannot run"),
    (break_health, "health check", "not healthy after 3s: GET /health on port"),
    (break_process, "health check", "its web process exited (exit status 4)"),
    (break_switch, "switch", "nginx refused the new configuration"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_a_failure_at_any_step_leaves_the_old_version_serving(rig, source, breakage, step,
                                                              message):
    first = deploy(rig, source, listen=LISTEN, check="/health", timeout=3)
    (source / "VERSION").write_text("2")
    before, routes, known = state_files(rig.home), rig.frontend.routes, rig.supervisor.groups()
    deployed = breakage(rig, source) or source
    with pytest.raises(DeployError) as info:
        rig.deployer().deploy(str(deployed), "web")
    text = str(info.value)
    assert f"deploy failed at step '{step}'" in text and message in text, text
    assert f"the current version ({first.id}) keeps serving" in text
    # the new instance is gone: its record, folder, port, program, supervisord's group
    assert [i.id for i in rig.home.instances()] == [first.id]
    assert rig.supervisor.groups() == known
    assert state_files(rig.home) == before
    assert rig.frontend.routes == routes  # unchanged, or put back (switch)
    assert state(rig).current == first.id
    serves(rig, first.id, 1)


def test_a_health_check_gives_the_new_version_its_timeout(rig, source):
    """The clock moves 0.5 s a reading: a new version that answers 500 is given up after
    the deploy's timeout by the clock, not by a number of tries."""
    deploy(rig, source, listen=LISTEN, check="/health", timeout=3)
    (source / "HEALTH").write_text("503")
    started = rig.clock.now
    with pytest.raises(DeployError, match="not healthy after 3s.* gave HTTP 503"):
        rig.deployer().deploy(str(source), "web")
    assert 3 < rig.clock.now - started < 10


@pytest.mark.parametrize("keep", [0, 1, 2])
def test_a_deploy_keeps_as_many_previous_instances_as_the_settings_say(tmp_path_factory,
                                                                       source, keep):
    rig = Rig(tmp_path_factory.mktemp("f") / "home", settings={"keep = 1": f"keep = {keep}"})
    try:
        deployed = []
        for version in range(1, 5):
            (source / "requirements.txt").write_text(f"gunicorn\n# version {version}\n")
            deployed.append(deploy(rig, source, version=version, listen=LISTEN).id)
        kept = deployed[-2:-2 - keep:-1]  # newest first
        assert state(rig).current == deployed[-1] and state(rig).previous == tuple(kept)
        remaining = rig.home.instances()
        assert sorted(i.id for i in remaining) == sorted([deployed[-1], *kept])
        for gone in set(deployed) - {i.id for i in remaining}:
            assert not os.path.exists(rig.home.instance_dir(gone))
            assert rig.supervisor.process(gone + ":web") is None
        for previous in kept:
            assert rig.supervisor.state(previous + ":web") == "STOPPED"
        # the environments left are those of the remaining instances, no more
        assert rig.environments.names() == sorted(os.path.basename(i.virtualenv)
                                                  for i in remaining)
        if keep == 0:
            with pytest.raises(DeployError, match="no previous instance to roll back to"):
                rig.deployer().rollback("web")
    finally:
        rig.close()


def test_rollback_with_no_previous_changes_nothing(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    before, routes = state_files(rig.home), rig.frontend.routes
    with pytest.raises(DeployError, match="web has no previous instance to roll back to"):
        rig.deployer().rollback("web")
    assert state_files(rig.home) == before and rig.frontend.routes == routes
    serves(rig, first.id, 1)


def test_rollback_starts_checks_and_switches_to_the_previous(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    second = deploy(rig, source, version=2)
    target = rig.deployer().rollback("web")
    assert target.id == first.id
    serves(rig, first.id, 1)
    assert route_of(rig)["instance"] == first.id and route_of(rig)["port"] == first.port
    assert (state(rig).current, state(rig).previous) == (first.id, (second.id,))
    assert rig.supervisor.state(second.id + ":web") == "STOPPED"
    assert rig.supervisor.autostart[first.id] is True


@pytest.mark.parametrize("breakage", ["health", "start"])
def test_a_failed_rollback_leaves_the_target_stopped(rig, source, breakage):
    first = deploy(rig, source, listen=LISTEN, check="/health", timeout=3)
    second = deploy(rig, source, version=2)
    if breakage == "health":
        with open(os.path.join(rig.home.instance_dir(first.id), "HEALTH"), "w") as f:
            f.write("500")  # the previous version has gone bad since
        step = "health check"
    else:
        rig.supervisor.refuse_next_start()
        step = "start"
    routes = rig.frontend.routes
    with pytest.raises(DeployError) as info:
        rig.deployer().rollback("web")
    assert f"rollback of web to {first.id} failed at step '{step}'" in str(info.value)
    assert "The current version keeps serving" in str(info.value)
    assert rig.supervisor.state(first.id + ":web") == "STOPPED"
    assert "autostart = false" in open(rig.home.program_path(first.id)).read()
    assert rig.supervisor.autostart[first.id] is False
    assert rig.frontend.routes == routes
    assert (state(rig).current, state(rig).previous) == (second.id, (first.id,))
    serves(rig, second.id, 2)


def test_route_to_a_stopped_instance_is_refused(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    second = deploy(rig, source, version=2)
    before, routes = state_files(rig.home), rig.frontend.routes
    with pytest.raises(DeployError, match=f"{first.id} is not running; start it with"):
        rig.deployer().route("web", first.id)
    assert state_files(rig.home) == before and rig.frontend.routes == routes
    serves(rig, second.id, 2)

    rig.home.lifecycle.start(first.id)
    rig.deployer().route("web", first.id)
    assert route_of(rig)["instance"] == first.id
    assert (state(rig).current, state(rig).previous) == (first.id, (second.id,))
    serves(rig, second.id, 2)  # a route stops nothing: the other one runs on


def test_route_to_an_instance_whose_process_has_exited_is_refused(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    second = deploy(rig, source, version=2)
    rig.home.lifecycle.start(first.id)
    rig.supervisor.exit(first.id + ":web", 1)
    with pytest.raises(DeployError, match=f"{first.id} is not running"):
        rig.deployer().route("web", first.id)
    assert route_of(rig)["instance"] == second.id


def test_route_to_another_apps_instance_is_refused(rig, source):
    web = deploy(rig, source, listen=LISTEN)
    api = deploy(rig, source, app="api", listen=OTHER_LISTEN)
    routes = rig.frontend.routes
    with pytest.raises(UsageError, match=f"{api.id} is an instance of api, not of web"):
        rig.deployer().route("web", api.id)
    assert rig.frontend.routes == routes
    assert state(rig).current == web.id


def test_route_of_an_app_never_deployed_is_refused(rig, source):
    instance = rig.home.lifecycle.new("web")
    with pytest.raises(UsageError, match="web has no front-end address yet"):
        rig.deployer().route("web", instance.id)
    assert rig.frontend.applied == []


def test_a_switch_keeps_every_other_apps_route(rig, source):
    web = deploy(rig, source, listen=LISTEN)
    api = deploy(rig, source, app="api", listen=OTHER_LISTEN)
    web2 = deploy(rig, source, version=2)
    assert sorted((r["app"], r["instance"], r["listen"]) for r in rig.frontend.routes) == [
        ("api", api.id, OTHER_LISTEN), ("web", web2.id, LISTEN)]
    rig.deployer().rollback("web")
    assert sorted((r["app"], r["instance"]) for r in rig.frontend.routes) == [
        ("api", api.id), ("web", web.id)]
    serves(rig, api.id, 1)


@pytest.mark.parametrize("case, message", [
    ("no listen", "the first deploy of web needs --listen"),
    ("in the range", "is in the range the home gives its instances"),
    ("another app's", "is already the front-end of the app api"),
    ("taken", "something on this machine already listens there"),
    ("bad name", "invalid application name"),
    ("supervisord down", "supervisord is not running"),
    ("locked", "another deploy, route or rollback of web is running"),
])
def test_a_deploy_refused_before_it_starts_makes_nothing(rig, source, case, message):
    deploy(rig, source, app="api", listen=OTHER_LISTEN)
    before, routes, calls = state_files(rig.home), rig.frontend.routes, len(rig.frontend.applied)
    app, kwargs = "web", {"listen": LISTEN}
    if case == "no listen":
        kwargs = {}
    elif case == "in the range":
        kwargs = {"listen": f"127.0.0.1:{rig.home.settings.port_first + 3}"}
    elif case == "another app's":
        kwargs = {"listen": OTHER_LISTEN}
    elif case == "taken":
        rig.bindable = False
    elif case == "bad name":
        app = "Web"
    elif case == "supervisord down":
        rig.supervisor.up = False
    deployer = rig.deployer()
    with pytest.raises(SargeError, match=message):
        if case == "locked":
            with deployer.switch.app_lock("web"):  # as a deploy in another process holds it
                deployer.deploy(str(source), app, **kwargs)
        else:
            deployer.deploy(str(source), app, **kwargs)
    rig.supervisor.up = True
    assert state_files(rig.home) == before
    assert rig.frontend.routes == routes and len(rig.frontend.applied) == calls


def test_a_config_whose_redeploy_fails_is_put_back(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    deployer = rig.deployer()
    deployer.configure("web", ["A=1"])
    path = rig.home.app_config_path("web")
    with open(path) as f:
        saved = f.read()
    rig.frontend.fail = FrontendError("nginx refused the new configuration")
    with pytest.raises(DeployError, match="deploy failed at step 'switch'"):
        deployer.configure("web", ["A=2", "B=3"])
    with open(path) as f:
        assert f.read() == saved
    assert state(rig).current != first.id  # the first redeploy took effect
    assert len(rig.home.instances()) == 2


def test_route_to_an_instance_that_fails_its_health_check_is_refused(rig, source):
    first = deploy(rig, source, listen=LISTEN, check="/health", timeout=3)
    second = deploy(rig, source, version=2)
    rig.home.lifecycle.start(first.id)
    with open(os.path.join(rig.home.instance_dir(first.id), "HEALTH"), "w") as f:
        f.write("500")
    routes = rig.frontend.routes
    with pytest.raises(DeployError, match="not healthy after 3s"):
        rig.deployer().route("web", first.id)
    assert rig.frontend.routes == routes
    assert (state(rig).current, state(rig).previous) == (second.id, (first.id,))
    serves(rig, second.id, 2)


# It said "was removed", though its record and port stayed (fixed with the deploy package).
def test_a_failed_deploy_says_so_when_its_new_instance_is_not_all_removed(
        tmpfs_path, source):
    from .test_security import deep_folder

    rig = Rig(tmpfs_path / "home")
    try:
        first = deploy(rig, source, listen=LISTEN)
        start = rig.supervisor.on_start

        def deep_then_exit(group, process):
            """The new version makes a tree deeper than removal goes, then exits."""
            if group == first.id:
                return start(group, process)
            os.makedirs(rig.home.runtime_dir(group), exist_ok=True)
            os.close(deep_folder(rig.home.runtime_dir(group), 10_001))
            return 3

        rig.supervisor.on_start = deep_then_exit
        with pytest.raises(DeployError) as info:
            deploy(rig, source, version=2)
        (new,) = {i.id for i in rig.home.instances()} - {first.id}  # not all removed
        assert f"{new} was removed" not in str(info.value), str(info.value)
    finally:
        rig.close()


# -- undeploy ---------------------------------------------------------------------------------

def test_undeploy_leaves_the_other_app_routed(rig, source):
    web = deploy(rig, source, listen=LISTEN)
    other = deploy(rig, source, app="other", listen=OTHER_LISTEN)
    rig.steps.clear()
    done = rig.deployer().undeploy("web")
    assert done == {"app": "web", "route": LISTEN, "instances": [web.id], "environments": 0,
                    "data": False, "services": []}
    assert [step for step, _ in rig.steps] == ["route", "destroy", "clean up"]
    assert [r["app"] for r in rig.frontend.routes] == ["other"]
    assert [i.id for i in rig.home.instances()] == [other.id]
    assert not os.path.exists(rig.home.app_state_path("web"))


def test_an_undeploy_nginx_refuses_keeps_the_app_serving(rig, source):
    web = deploy(rig, source, listen=LISTEN)
    rig.frontend.fail = FrontendError("nginx -t failed")
    with pytest.raises(DeployError, match="nginx -t failed") as info:
        rig.deployer().undeploy("web")
    assert info.value.step == "route"
    assert state(rig).current == web.id  # the state is back, nothing was destroyed
    serves(rig, web.id, 1)
    assert route_of(rig)["instance"] == web.id


def test_an_undeploy_that_cannot_remove_everything_says_so_and_finishes_later(
        tmpfs_path, source):
    import subprocess

    from .test_security import deep_folder

    rig = Rig(tmpfs_path / "home")
    try:
        web = deploy(rig, source, listen=LISTEN)
        os.makedirs(rig.home.runtime_dir(web.id), exist_ok=True)
        os.close(deep_folder(rig.home.runtime_dir(web.id), 10_001))  # deeper than removal goes
        with pytest.raises(SargeError, match="web is not all removed: .* run `sarge HOME "
                           "undeploy web` again"):
            rig.deployer().undeploy("web")
        assert rig.frontend.routes == []  # the route went first
        assert [i.id for i in rig.home.instances()] == [web.id]  # its record stays
        subprocess.run(["rm", "-rf", rig.home.runtime_dir(web.id)], check=True)
        assert rig.deployer().undeploy("web")["instances"] == [web.id]
        assert rig.home.instances() == []
    finally:
        rig.close()


def test_a_failed_first_deploy_says_nothing_was_serving(rig, source):
    (source / "EXIT").write_text("1")
    with pytest.raises(DeployError) as info:
        deploy(rig, source, listen=LISTEN)
    text = str(info.value)
    assert "nothing was serving web, and nothing does now" in text, text
    assert "keeps serving" not in text
    assert "its web process exited (exit status 1)" in text  # not supervisord's 0


@pytest.mark.parametrize("status", [1, 3])
def test_a_dead_worker_is_reported_with_its_status_and_its_own_log(rig, source, status):
    """supervisord's info says 0 for a process that exits before startsecs: the status
    comes from its log; the log shown is the worker's, not the web process's."""
    deploy(rig, source, listen=LISTEN)
    (source / "Procfile").write_text("web: serve\nworker: work\n")
    start = rig.supervisor.on_start

    def worker_dies(group, process):
        if process != "worker":
            return start(group, process)
        with open(rig.home.log_path(group, "worker"), "w") as f:
            f.write("worker: cannot reach the broker\n")
        with open(rig.home.log_path(group), "a") as f:
            f.write("web: listening\n")
        return status

    rig.supervisor.on_start = worker_dies
    with pytest.raises(DeployError) as info:
        deploy(rig, source, version=2)
    text = str(info.value)
    assert f"its worker process exited (exit status {status})" in text, text
    assert "Last lines of its worker log:\n  worker: cannot reach the broker" in text
    assert "web: listening" not in text
    (new,) = [path for path in os.listdir(rig.home.failed_logs_dir) if "-worker" in path]
    kept = os.path.join(rig.home.failed_logs_dir, new)
    assert kept in text and open(kept).read() == "worker: cannot reach the broker\n"
    instance_id = new[:-len("-worker.log")]
    assert open(rig.home.failed_log_path(instance_id, "web")).read() == "web: listening\n"
    assert not os.path.exists(rig.home.log_path(instance_id, "worker"))  # moved, not copied


@pytest.mark.parametrize("keep", [0, 2])
def test_the_logs_of_the_last_failed_deploys_are_kept(tmp_path_factory, source, keep):
    rig = Rig(tmp_path_factory.mktemp("f") / "home",
              settings={"keep_failed_logs = 5": f"keep_failed_logs = {keep}"})
    try:
        deploy(rig, source, listen=LISTEN)
        (source / "EXIT").write_text("2")
        failed = []
        for _ in range(4):
            with pytest.raises(DeployError) as info:
                deploy(rig, source)
            (instance_id,) = [w for w in str(info.value).split() if w.startswith("web-")
                              and not w.endswith(")")][:1]
            failed.append(instance_id)
            if keep == 0:
                assert "kept" not in str(info.value)
        names = sorted(os.listdir(rig.home.failed_logs_dir))
        assert names == sorted(f"{i}-web.log" for i in failed[len(failed) - keep:])
    finally:
        rig.close()


# -- singleton types ----------------------------------------------------------------------

@pytest.fixture
def celery_source(source):
    """An app with a web, a worker and a singleton beat."""
    (source / "Procfile").write_text("web: serve\nworker: celery worker\nbeat: celery beat\n")
    (source / "sarge-app.toml").write_text("[processes.beat]\nsingleton = true\n")
    return source


def watch_beats(rig):
    """Fail at once, in the fake supervisord, if a beat starts while another runs; and
    note whether supervisord was told of the instance's start at boot before its beat
    started (it would then have started the beat itself)."""
    told_early = []

    def on_start(group, process):
        if process == "beat":
            assert rig.supervisor.running("beat") == [], f"two beats: {group} too"
            told_early.append(rig.supervisor.autostart.get(group))
        return rig.apps.start(group, process)

    rig.supervisor.on_start = on_start
    return told_early


def events(rig, kind, process):
    return [name for what, name in rig.supervisor.events
            if what == kind and name.endswith(":" + process)]


def test_a_singleton_starts_after_the_switch_once_the_old_one_stopped(rig, celery_source):
    told_early = watch_beats(rig)
    first = deploy(rig, celery_source, listen=LISTEN)
    assert [step for step, _ in rig.steps][-3:] == ["drain", "start singletons", "clean up"]
    assert ("start", "web, worker (beat after the switch)") in rig.steps
    assert rig.supervisor.running("beat") == [first.id]
    assert rig.supervisor.autostart[first.id] is True  # told once the beat ran

    rig.steps.clear()
    rig.supervisor.events.clear()
    second = deploy(rig, celery_source, version=2)
    assert [step for step, _ in rig.steps][-6:] == [
        "health check", "switch", "drain", "stop old", "start singletons", "clean up"]
    order = rig.supervisor.events
    # web and worker overlap, as before: the new ones start before the old ones stop
    for process in ("web", "worker"):
        assert order.index(("start", f"{second.id}:{process}")) < order.index(
            ("stop", f"{first.id}:{process}"))
    # the beat does not: the new one starts after the old one has stopped
    assert order.index(("stop", f"{first.id}:beat")) < order.index(("start", f"{second.id}:beat"))
    assert rig.supervisor.running("beat") == [second.id]
    assert told_early == [False, False]
    assert rig.supervisor.autostart[second.id] is True
    serves(rig, second.id, 2)


def test_a_rollback_starts_the_singleton_after_the_current_one_stopped(rig, celery_source):
    watch_beats(rig)
    first = deploy(rig, celery_source, listen=LISTEN)
    second = deploy(rig, celery_source, version=2)
    rig.steps.clear()
    rig.supervisor.events.clear()
    rig.deployer().rollback("web")
    assert [step for step, _ in rig.steps] == [
        "start", "health check", "switch", "drain", "stop old", "start singletons", "clean up"]
    assert (events(rig, "stop", "beat"), events(rig, "start", "beat")) == (
        [f"{second.id}:beat"], [f"{first.id}:beat"])
    assert rig.supervisor.running("beat") == [first.id]
    serves(rig, first.id, 1)


def test_a_route_stops_the_old_singletons_alone_then_starts_the_new_ones(rig, celery_source):
    first = deploy(rig, celery_source, listen=LISTEN)
    second = deploy(rig, celery_source, version=2)
    rig.home.lifecycle.start(first.id)  # by hand, whole: a second beat, the user's doing
    assert rig.supervisor.running("beat") == sorted([first.id, second.id])
    rig.steps.clear()
    rig.deployer().route("web", first.id)
    assert [step for step, _ in rig.steps] == [
        "health check", "switch", "drain", "start singletons"]
    assert dict(rig.steps)["start singletons"] == f"beat, once {second.id}:beat had stopped"
    assert rig.supervisor.running("beat") == [first.id]
    # the old instance's other types run on (a route stops nothing else)
    assert rig.supervisor.state(f"{second.id}:worker") == "RUNNING"
    serves(rig, second.id, 2)
    serves(rig, first.id, 1)



def test_supervisord_is_told_of_the_start_at_boot_once_no_type_is_left_unstarted(rig):
    """Told earlier, supervisord would start the never-started beat by itself; a worker
    that has exited meanwhile was started all the same (supervisord restarts it, or not,
    as ever)."""
    from sarge.manifest import Manifest, ProcessOptions

    lifecycle = rig.home.lifecycle
    instance = lifecycle.new("web")
    lifecycle.set_processes(instance.id, {"web": "serve", "worker": "work", "beat": "beat"},
                            manifest=Manifest({"beat": ProcessOptions(singleton=True)}))
    lifecycle.start(instance.id, processes=["web", "worker"])
    assert "autostart = true" in open(rig.home.program_path(instance.id)).read()
    assert rig.supervisor.autostart[instance.id] is False  # the beat never ran
    rig.supervisor.exit(f"{instance.id}:worker")
    lifecycle.start(instance.id, processes=["beat"])
    assert rig.supervisor.autostart[instance.id] is True
