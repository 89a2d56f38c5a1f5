"""The watch window after a switch: the fast tier's fakes for its branches (a process
that dies, a health check that stops answering, 5xx answers in nginx's log, a first
deploy, a rollback, a route), and one real deploy whose new version crashes under load."""

import os
import re
import time

import pytest

from sarge.deploy.journaled import journal_of
from sarge.errors import DeployError

from .conftest import deploy as real_deploy
from .conftest import edit_settings, front, listen_port, sarge, wait_for_state, wait_until
from .fakes import Rig
from .test_deploy_fast import LISTEN, deploy, serves, state


@pytest.fixture
def rig(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("w") / "home")
    yield rig
    rig.close()


def breaking(rig, after, what):
    """A sleep for the watch that, at its ``after``-th call, breaks the current instance:
    ``what(instance_id)``."""
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == after:
            what(state(rig).current)
    return sleep, calls


@pytest.mark.fast
def test_a_version_that_dies_in_the_window_is_rolled_back_by_itself(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    sleep, calls = breaking(rig, 2, lambda i: rig.supervisor.exit(f"{i}:web", 1))
    rig.steps.clear()
    with pytest.raises(DeployError) as info:
        rig.deployer(sleep=sleep).deploy(str(source), "web", watch=10)
    text = str(info.value)
    assert info.value.step == "watch"
    assert "deploy failed at step 'watch': its web process exited" in text, text
    assert f"the current version ({first.id}) keeps serving" in text
    assert [s for s, _ in rig.steps][-3:] == ["switch", "drain", "switch back"]  # no stop old
    assert state(rig).current == first.id
    serves(rig, first.id, 1)
    assert [i.id for i in rig.home.instances()] == [first.id]  # the new one removed
    (record,) = [r for r in journal_of(rig.home).records() if r["outcome"] != "ok"]
    assert (record["step"], record["to"]) == ("watch", first.id)


@pytest.mark.fast
def test_a_process_that_dies_during_the_switch_fails_the_watch(rig, source):
    """The watch holds the new instance to the processes that passed its health check:
    one that exits between the check and the window is not left out of it."""
    first = deploy(rig, source, listen=LISTEN)
    steps = []

    def progress(step, seconds, detail):
        steps.append(step)
        if step == "switch":  # (the first switch: the watch's backup switch comes next)
            rig.supervisor.exit(f"{state(rig).current}:web", 3)
    with pytest.raises(DeployError, match=r"its web process exited \(exit status 3\)"):
        rig.deployer(progress=progress).deploy(str(source), "web", watch=10)
    assert steps.count("switch") == 1
    serves(rig, first.id, 1)


@pytest.mark.fast
def test_a_health_check_that_stops_answering_fails_the_watch(rig, source):
    first = deploy(rig, source, listen=LISTEN, check="/health")

    def unhealthy(instance_id):
        with open(os.path.join(rig.home.instance_dir(instance_id), "HEALTH"), "w") as f:
            f.write("503")
    sleep, _ = breaking(rig, 1, unhealthy)
    with pytest.raises(DeployError, match=r"GET /health answered 503 twice in a row at \+"):
        rig.deployer(sleep=sleep).deploy(str(source), "web", watch=10)
    serves(rig, first.id, 1)


@pytest.mark.fast
def test_a_good_version_is_kept_after_its_window(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    rig.steps.clear()
    second = rig.deployer().deploy(str(source), "web", watch=5)
    steps = [s for s, _ in rig.steps]
    assert steps.index("watch") < steps.index("stop old")
    assert dict(rig.steps)["watch"].startswith("5s: processes up, / answering")
    assert state(rig).current == second.id and state(rig).previous == (first.id,)
    assert rig.supervisor.state(f"{first.id}:web") == "STOPPED"


@pytest.mark.fast
def test_5xx_answers_in_nginx_log_fail_the_watch_unless_the_old_did_as_badly(rig, source):
    log = rig.home.watch_log
    rig.frontend.watch_log = log
    first = deploy(rig, source, listen=LISTEN)
    port_of = {}

    def answers(instance_id, status, count):
        port = port_of.setdefault(instance_id, rig.home.get(instance_id).port)
        with open(log, "a") as f:
            for n in range(count):
                f.write(f"{time.time():.3f} {status if n % 2 else 200} 127.0.0.1:{port}\n")
    sleep, _ = breaking(rig, 1, lambda i: answers(i, 502, 40))
    with pytest.raises(DeployError, match=r"5xx rate 50% over 40 requests"):
        rig.deployer(sleep=sleep).deploy(str(source), "web", watch=10)
    serves(rig, first.id, 1)
    # the old version answered as badly before the switch: the new one is no worse
    answers(first.id, 500, 40)
    sleep, _ = breaking(rig, 1, lambda i: answers(i, 502, 40))
    second = rig.deployer(sleep=sleep).deploy(str(source), "web", watch=3)
    assert state(rig).current == second.id


@pytest.mark.fast
def test_failed_answers_behind_which_a_process_died_name_the_exit(rig, source):
    """nginx sees a dead process at once, supervisord a moment later: the 5xx answers come
    first, and the watch names their cause (the fake's pid runs nowhere: it is gone)."""
    log = rig.home.watch_log
    rig.frontend.watch_log = log
    first = deploy(rig, source, listen=LISTEN)
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        instance_id = state(rig).current
        if len(calls) == 1:
            port = rig.home.get(instance_id).port
            with open(log, "a") as f:
                f.writelines(f"{time.time():.3f} 502 127.0.0.1:{port}\n" for _ in range(40))
        elif len(calls) == 3:  # supervisord sees the exit two sleeps later
            rig.supervisor.exit(f"{instance_id}:web", 1)
    with pytest.raises(DeployError, match=r"its web process exited \(exit status 1\) at \+"):
        rig.deployer(sleep=sleep).deploy(str(source), "web", watch=10)
    serves(rig, first.id, 1)


@pytest.mark.fast
def test_a_first_deploy_that_fails_its_watch_serves_on_and_says_so(rig, source):
    sleep, _ = breaking(rig, 1, lambda i: rig.supervisor.exit(f"{i}:web", 3))
    with pytest.raises(DeployError, match="nothing served web before it, so it serves on"):
        rig.deployer(sleep=sleep).deploy(str(source), "web", listen=LISTEN, watch=10)
    assert state(rig).current is not None


@pytest.mark.fast
def test_a_rollback_and_a_route_that_fail_their_watch_go_back(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    second = deploy(rig, source, version=2)
    sleep, _ = breaking(rig, 1, lambda i: rig.supervisor.exit(f"{i}:web", 1))
    with pytest.raises(DeployError, match=f"rollback of web to {first.id} failed at step "
                       "'watch'"):
        rig.deployer(sleep=sleep).rollback("web", watch=10)
    assert state(rig).current == second.id and state(rig).previous == (first.id,)
    serves(rig, second.id, 2)
    assert rig.supervisor.state(f"{first.id}:web") != "RUNNING"  # stopped again

    rig.deployer().rollback("web")  # first serves; second is kept, stopped
    rig.supervisor.start_group(second.id)
    sleep, _ = breaking(rig, 1, lambda i: rig.supervisor.exit(f"{i}:web", 1))
    with pytest.raises(DeployError, match=f"route of web to {second.id} failed at step "
                       f"'watch': .*; {first.id} serves again"):
        rig.deployer(sleep=sleep).route("web", second.id, watch=10)
    serves(rig, first.id, 1)


def interrupted(seconds):
    raise KeyboardInterrupt  # ^C while the watch waits


@pytest.mark.fast
@pytest.mark.parametrize("keep", [True, False, None])
def test_a_ctrl_c_in_the_window_asks_which_version_to_keep(rig, source, keep):
    """On a terminal the operator is asked (``keep``: the answer); without one (None),
    the old version serves again."""
    first = deploy(rig, source, listen=LISTEN)
    questions = []

    def ask(question):
        questions.append(question)
        return keep
    deployer = rig.deployer(sleep=interrupted, ask=None if keep is None else ask)
    if keep:
        second = deployer.deploy(str(source), "web", watch=30)
        assert state(rig).current == second.id
        assert dict(rig.steps)["watch"] == "interrupted: the new version kept"
        assert rig.supervisor.state(f"{first.id}:web") == "STOPPED"  # as after a window
    else:
        with pytest.raises(DeployError, match="the watch was interrupted"):
            deployer.deploy(str(source), "web", watch=30)
        serves(rig, first.id, 1)
    assert len(questions) == (1 if keep is not None else 0)
    if questions:
        assert questions[0].startswith("Keep web-") and f"{first.id} serves again" in \
            questions[0]


def typed_in_a_terminal(script, answers, timeout=120):
    """Run ``script`` on a new terminal; each (marker, keys) of ``answers`` is typed once
    the output holds its marker, in order. Returns the output."""
    import pty
    import select
    import signal

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        os.execv("/bin/sh", ["/bin/sh", "-c", script])
    out, deadline, answers = b"", time.monotonic() + timeout, list(answers)
    try:
        while True:
            assert time.monotonic() < deadline, f"hangs: {out[-400:]!r}"
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    pass
            if answers and answers[0][0] in out:
                time.sleep(0.3)
                os.write(fd, answers.pop(0)[1])
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        while select.select([fd], [], [], 0.5)[0]:  # what it printed last
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(fd)
    return out.decode(errors="replace")


@pytest.mark.parametrize("answer", [b"y\r", b"n\r"])
def test_ctrl_c_in_a_real_window_asks_on_the_terminal(running, webapp, answer):
    port = listen_port()
    first = real_deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}",
                        check=True).stdout.strip()
    (webapp / "VERSION").write_text("2")
    command = (f"trap true INT; {running.path}/bin/sarge deploy {webapp} --app web "
               "--watch 60; echo EXIT=$?")  # the shell lives on through the ^C
    out = typed_in_a_terminal(command, [(b"drain", b"\x03"), (b"[y/N]", answer)])
    assert f"(no: {first} serves again) [y/N]" in out, out
    if answer == b"y\r":
        assert "interrupted: the new version kept" in out and "EXIT=0" in out, out
        assert front(port)[1].startswith("version 2 from ")
    else:
        assert "the watch was interrupted" in out and "EXIT=1" in out, out
        assert front(port) == (200, f"version 1 from {first}\n")


def test_sarge_killed_in_the_window_leaves_one_version_that_the_next_deploy_keeps(
        running, webapp):
    """SIGKILL in the window: the new version serves, the old one runs on; the next
    deploy stops it and leaves one version serving and one kept."""
    from .faults import deploy_killed_at
    from .test_deploy import instances

    edit_settings(running, {"watch = 0": "watch = 20"})
    port = listen_port()
    first = real_deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}",
                        "--no-watch", check=True).stdout.strip()
    pid = running.supervisor.process(first + ":web")["pid"]
    (webapp / "VERSION").write_text("2")
    killed = deploy_killed_at(running, webapp, "web", "watch:window")
    assert killed.returncode == -9, killed.stderr
    status, text = front(port)
    assert status == 200 and text.startswith("version 2 from "), text
    # the one it could have gone back to runs on, the same process (a deploy returns once
    # the check passes; supervisord says RUNNING startsecs after the spawn)
    assert wait_for_state(running, first, "running", timeout=10)["pid"] == pid
    (webapp / "VERSION").write_text("3")
    third = real_deploy(running, webapp, "--app", "web", "--no-watch",
                        check=True).stdout.strip()
    assert front(port) == (200, f"version 3 from {third}\n")
    rows = {r["id"]: r for r in instances(running)}
    assert rows[third]["role"] == "current" and len(rows) == 2
    assert [r["state"] for i, r in rows.items() if i != third] == ["stopped"]


@pytest.mark.heavy
def test_a_real_version_that_crashes_after_its_check_is_rolled_back_under_load(
        running, webapp):
    """The measure of the issue: a version that passes its health check and dies 6 s
    after its first real request (its gunicorn master killed 6 s after a worker's first
    POST: the load's, never the health check's GET), under load: with the watch, then
    without; the requests failed are counted. (A timer from its start, then one from its
    first answer, let it die before or during its check on a loaded machine; 6 s: it dies
    in the window, once nginx has the old version as its backup, even when the drain
    takes seconds.)"""
    from .test_deploy import Load

    edit_settings(running, {"watch = 0": "watch = 15"})
    port = listen_port()
    first = real_deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}",
                        "--no-watch", check=True).stdout.strip()  # (not 15 s of watching)
    app = webapp / "app.py"
    good = app.read_text()
    app.write_text(good + (
        "\nimport os, signal, threading\n_armed, _app = [], app\n\n\n"
        "def app(environ, start_response):  # the master killed 6 s after the first POST\n"
        "    if not _armed and environ['REQUEST_METHOD'] == 'POST':\n"
        "        _armed.append(threading.Timer(6, os.kill, (os.getppid(), signal.SIGKILL)))\n"
        "        _armed[0].start()\n"
        "    return _app(environ, start_response)\n"))
    with Load(port, clients=8) as load:
        time.sleep(0.5)
        result = real_deploy(running, webapp, "--app", "web")
        time.sleep(0.5)
    print(f"with the watch: {load.ok} requests, {len(load.failures)} failed")
    assert result.returncode == 1, result.stderr
    assert "deploy failed at step 'watch': its web process exited" in result.stderr, \
        result.stderr
    assert f"the current version ({first}) keeps serving" in result.stderr
    assert front(port) == (200, f"version 1 from {first}\n")
    assert len(load.failures) <= (load.ok + len(load.failures)) * 0.01, (
        load.ok, load.failures[:5])
    assert '"step": "watch"' in sarge(running, "history", "--json", check=True).stdout

    # without the watch: the same version under the same load, until it has failed more
    # requests than the watched deploy did (it dies 6 s after its first POST, and again after
    # each restart); bench/bench_watch.py measures both over a fixed time
    with Load(port, clients=8) as unwatched:
        result = real_deploy(running, webapp, "--app", "web", "--no-watch")
        assert result.returncode == 0, result.stderr
        wait_until(lambda: len(unwatched.failures) > len(load.failures), 20,
                   "the unwatched version to fail requests")
    print(f"without: {unwatched.ok} requests, {len(unwatched.failures)} failed")


@pytest.mark.heavy
def test_a_real_version_answering_5xx_goes_back_and_a_good_one_is_kept(running, webapp):
    """nginx's watch log counts the new version's 5xx answers (its health check still
    answers); a good version passes its whole window and the old one is stopped."""
    from .test_deploy import Load, instances

    port = listen_port()
    first = real_deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}",
                        "--check", "/health", check=True).stdout.strip()
    app = webapp / "app.py"
    good = app.read_text()
    app.write_text(good + (
        "\n_STARTED, _app = time.time(), app\n\n\n"
        "def app(environ, start_response):  # 500 for all but /health, 2 s after start\n"
        "    if environ.get('PATH_INFO') != '/health' and time.time() - _STARTED > 2:\n"
        "        start_response('500 Broken', [('Content-Length', '0')])\n"
        "        return [b'']\n"
        "    return _app(environ, start_response)\n"))
    with Load(port, clients=4):
        result = real_deploy(running, webapp, "--app", "web", "--watch", "20")
    assert result.returncode == 1, result.stderr
    assert "deploy failed at step 'watch': 5xx rate" in result.stderr, result.stderr
    assert front(port) == (200, f"version 1 from {first}\n")

    app.write_text(good)
    (webapp / "VERSION").write_text("3")
    result = real_deploy(running, webapp, "--app", "web", "--watch", "3")
    assert result.returncode == 0, result.stderr
    # the step's own time varies under load; its detail names the 3 s window it watched
    assert re.search(r"watch +[\d.]+s  3s: processes up", result.stderr), result.stderr
    assert "stop old" in result.stderr
    third = result.stdout.strip()
    assert front(port) == (200, f"version 3 from {third}\n")
    states = {r["id"]: r["state"] for r in instances(running)}
    assert states == {first: "stopped", third: states[third]}
    assert "backup" not in open(running.nginx_conf).read()  # nginx routes to it alone
