"""The fleet's fast tier: the fleet file, waves, and the rollout's decisions, with the
hosts in memory (tests/fleetfakes.py). The same paths against real sshd: test_fleet.py."""

import pytest

from sarge.errors import FleetFileError, HostUnreachable, RolloutFailed, RolloutLocked
from sarge.fleet import fleetfile
from sarge.fleet.rollout import Rollout
from sarge.fleet.waves import wave_size, waves

from .fleetfakes import FakeHostLock, FakeRemote, World, fleet_file

pytestmark = pytest.mark.fast


def rollout(tmp_path, world=None, count=3, rollout_settings="", **kwargs):
    fleet = fleetfile.load(fleet_file(tmp_path, count, rollout_settings))
    world = world or World([h.name for h in fleet.hosts])
    sleeps, lines = [], []
    r = Rollout(fleet, fleet.hosts, remote=FakeRemote(world), host_lock=FakeHostLock(world),
                sleep=sleeps.append,
                progress=lambda host, line: lines.append((host, line)), **kwargs)
    return r, world, sleeps, lines


@pytest.fixture
def source(tmp_path):
    """An archive, sent as it is (the fake hosts never unpack it; a folder would be
    packed by a `sarge package` process)."""
    import tarfile

    path = tmp_path / "app.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    return path


def test_the_fleet_file_is_read(tmp_path):
    fleet = fleetfile.load(fleet_file(tmp_path, 3, 'limit = "50%"\nwait = 2\nmax_failures = 1',
                                      extra_host='listen = "0.0.0.0:80"'))
    h1 = fleet.hosts[0]
    assert (h1.name, h1.user, h1.hostname, h1.port, h1.home, h1.roles, h1.listen) == (
        "h1", "deploy", "10.0.0.1", 22, "/srv/h1", ("web",), "0.0.0.0:80")
    assert (fleet.rollout.limit, fleet.rollout.wait, fleet.rollout.max_failures) == ("50%", 2, 1)
    assert fleet.lock_path == str(tmp_path / "fleet.toml.lock")
    assert [h.name for h in fleet.select(role="web")] == ["h1", "h3"]
    assert [h.name for h in fleet.select(["h3,h1"])] == ["h3", "h1"]
    assert [h.name for h in fleet.select(["10.0.0.2"])] == ["h2"]


@pytest.mark.parametrize("text, expected", [
    ("", "names no host"),
    ('[[hosts]]\naddress = "x"', "needs an address and a home"),
    ('[[hosts]]\naddress = "a@b:99999"\nhome = "/h"', "is not an SSH address"),
    ('[[hosts]]\naddress = "a@b"\nhome = "srv"', "must be an absolute path"),
    ('[[hosts]]\naddress = "a@b"\nhome = "/h"\nport = 2', "unknown setting 'port' in host 1"),
    ('[[hosts]]\naddress = "a@b"\nhome = "/h"\n[[hosts]]\naddress = "a@b:2"\nhome = "/h"',
     "two hosts are named 'b'"),
    ('[rollout]\nlimit = 0\n[[hosts]]\naddress = "a@b"\nhome = "/h"', "limit must be"),
    ('[rollout]\nlimit = "150%"\n[[hosts]]\naddress = "a@b"\nhome = "/h"', "limit must be"),
    ('[ssh]\nconnect_timeout = "x"\n[[hosts]]\naddress = "a@b"\nhome = "/h"',
     "must be a whole number"),
    ("[[hosts]\n", "is not valid TOML"),
])
def test_a_bad_fleet_file_is_one_line_that_names_it(tmp_path, text, expected):
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    with pytest.raises(FleetFileError) as info:
        fleetfile.load(path)
    message = str(info.value)
    assert expected in message and "\n" not in message, message


def test_selections_that_match_nothing_are_refused(tmp_path):
    fleet = fleetfile.load(fleet_file(tmp_path, 2))
    with pytest.raises(FleetFileError, match="no host 'h9' in .*its hosts: h1, h2"):
        fleet.select(["h9"])
    with pytest.raises(FleetFileError, match="matches the role 'db'"):
        fleet.select(role="db")


@pytest.mark.parametrize("limit, count, size", [
    (1, 6, 1), (2, 6, 2), (10, 6, 6), ("50%", 3, 2), ("100%", 6, 6), ("1%", 6, 1)])
def test_wave_sizes(limit, count, size):
    assert wave_size(limit, count) == size
    assert [len(w) for w in waves(range(count), limit)][0] == size


def test_waves_run_in_order_and_wait_between_them_only(tmp_path, source):
    r, world, sleeps, lines = rollout(tmp_path, rollout_settings="wait = 5", limit=2)
    report = r.deploy(str(source), "web")
    assert report.ok and report.waves == 2 and sleeps == [5.0]
    assert [(x.host, x.wave, x.old, x.new) for x in report.results] == [
        ("h1", 1, "h1-v1", world.current["h1"]), ("h2", 1, "h2-v1", world.current["h2"]),
        ("h3", 2, "h3-v1", world.current["h3"])]
    # every host answered before any was touched
    assert [c for _, c in world.calls[:3]] == ["list"] * 3
    assert (None, "wave 2/2: h3") in lines and ("h1", "  deploy  0.01s") in lines


def test_max_failures_lets_the_rollout_go_on_until_one_more_fails(tmp_path, source):
    world = World(["h1", "h2", "h3", "h4"])
    world.failing = {"h1", "h3"}
    r, world, _, _ = rollout(tmp_path, world, count=4, max_failures=1)
    with pytest.raises(RolloutFailed) as info:
        r.deploy(str(source), "web")
    outcomes = [x.outcome for x in info.value.report.results]
    assert outcomes == ["failed", "ok", "failed", "untouched"]
    assert ("h4", "put") not in world.calls and ("h4", "deploy") not in world.calls


def test_a_host_down_is_refused_or_skipped(tmp_path, source):
    r, world, _, lines = rollout(tmp_path)
    world.down = {"h2"}
    with pytest.raises(HostUnreachable, match="1 of 3 host.*no host was touched: h2: cannot"):
        r.deploy(str(source), "web")
    assert {c for _, c in world.calls} == {"list"}
    report = r.deploy(str(source), "web", skip_unreachable=True)
    assert [x.outcome for x in report.results] == ["ok", "unreachable", "ok"]
    assert report.ok and ("h2", "put") not in world.calls


def test_a_revert_that_fails_is_told(tmp_path, source):
    world = World(["h1", "h2"])
    world.failing = {"h2"}
    r, world, _, _ = rollout(tmp_path, world, count=2)
    with pytest.raises(RolloutFailed) as info:
        r.deploy(str(source), "web", revert=True)
    assert [x.outcome for x in info.value.report.results] == ["reverted", "failed"]
    assert world.current["h1"] == "h1-v1"
    # a rollback rollout of an app with nothing to go back to: the first host fails
    world2 = World(["h1", "h2"])
    r2, _, _, _ = rollout(tmp_path, world2, count=2)
    with pytest.raises(RolloutFailed, match="rollback of web failed on h1: nothing to roll"):
        r2.rollback("web")


def test_a_bad_limit_is_refused_before_anything(tmp_path):
    with pytest.raises(FleetFileError, match="--limit must be"):
        rollout(tmp_path, limit="x")


def fleet_main(*argv):
    """``sarge-fleet ARGV`` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from sarge.fleet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in argv])
    return info.value.code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("args, expected", [
    (("status",), "no fleet file"),
    (("deploy", "SRC"), "Missing option '--app'"),
    (("deploy", "SRC", "--app", "web", "--limit", "x"), "--limit must be"),
    (("rollback", "web", "--max-failures", "-1"), "Invalid value for '--max-failures'"),
    (("rollback", "web", "--wait", "soon"), "Invalid value for '--wait'"),
    (("run", "h1"), "no sarge command given"),
    (("run",), "name a host (or --all)"),
    (("run", "h7", "--", "list"), "no host 'h7'"),
    (("config", "web"), "give KEY=VALUE or --unset KEY"),
    (("config", "web", "NOEQUALS"), "not KEY=VALUE"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, args, expected):
    path = tmp_path / "fleet.toml"
    if args != ("status",):  # hosts on 127.0.0.1 where nothing listens: never reached
        path.write_text('[[hosts]]\naddress = "u@127.0.0.1:1"\nhome = "/h"\nname = "h1"\n')
    status, out, err = fleet_main("-f", path, *args)
    assert status == 2 and out == "", (status, out, err)
    assert err.startswith("sarge-fleet: ") and err.count("\n") == 1 and expected in err, err


def test_config_from_file_sets_and_unsets(home, tmp_path):
    from .conftest import invoke

    values = tmp_path / "values"
    values.write_text("A=1\n\nB=x = y\n")
    result = invoke(home, "config", "web", "--from-file", values)
    assert result.exit_code == 0, result.output
    values.write_text("-A\nC=3\n")
    assert invoke(home, "config", "web", "--from-file", values).exit_code == 0
    result = invoke(home, "config", "web", "--json")
    import json

    assert json.loads(result.stdout) == {"B": "x = y", "C": "3"}
    result = invoke(home, "config", "web", "--from-file", tmp_path / "missing")
    assert "cannot read the variables file" in str(result.exception)
    values.write_text("-1BAD\n")
    assert invoke(home, "config", "web", "--from-file", values).exit_code != 0


def test_a_source_that_cannot_deploy_is_refused_before_any_host_or_the_lock(tmp_path):
    from sarge.errors import FleetError

    r, world, _, _ = rollout(tmp_path)
    with pytest.raises(FleetError, match="is neither a folder nor a .tar"):
        r.deploy(str(tmp_path / "missing"), "web")
    folder = tmp_path / "app"  # `sarge package` validates it first: no Procfile, no server
    folder.mkdir()
    (folder / "app.py").write_text("")
    with pytest.raises(FleetError, match=r"app cannot be deployed, so no host was touched: "
                                         r".*sarge validate"):
        r.deploy(str(folder), "web")
    assert world.calls == [] and not (tmp_path / "fleet.toml.lock").exists()


def test_a_folder_is_packed_by_sarge_package_with_its_options(tmp_path):
    import subprocess
    import sys

    from sarge.fleet.pack import pack

    seen = []

    def run(argv, **kwargs):  # what pack asks of the local sarge
        seen.append(argv)
        with open(argv[argv.index("-o") + 1], "wb") as f:
            f.write(b"archive")
        return subprocess.CompletedProcess(argv, 0, '{"files": 3, "wheels": ["a.whl"], '
                                           '"revision": "0123456789abcdef", "sha256": "ab"}',
                                           "")

    (tmp_path / "app").mkdir()
    package = pack(str(tmp_path / "app"), str(tmp_path), wheels=True, strict=True, run=run)
    assert seen == [[sys.executable, "-m", "sarge", "package", str(tmp_path / "app"), "-o",
                     str(tmp_path / "source.tar.gz"), "--json", "--wheels", "--strict"]]
    assert (package.sha256, package.size, package.note) == (
        "ab", 7, "3 files, 1 wheels, git 0123456789ab")


def test_the_fleet_lock_lives_on_the_first_host(tmp_path, source):
    fleet = fleetfile.load(fleet_file(tmp_path, 3))
    world = World([h.name for h in fleet.hosts])
    lines = []
    r = Rollout(fleet, fleet.select(["h2,h3"]), remote=FakeRemote(world),
                host_lock=FakeHostLock(world), progress=lambda h, line: lines.append((h, line)))
    report = r.deploy(str(source), "web")
    assert ("h1", "lock") in world.calls and ("h1", "deploy") not in world.calls
    assert [x.host for x in report.results] == ["h2", "h3"] and world.locked_by is None
    world.locked_by = "deploy web by someone else"  # another machine's rollout
    with pytest.raises(RolloutLocked, match="deploy web by someone else"):
        r.deploy(str(source), "web")
    world.locked_by = None
    world.down = {"h1"}  # the lock's host down: refused, unless --skip-unreachable
    calls = len(world.calls)
    with pytest.raises(HostUnreachable, match="the fleet's lock is on its first host, which "
                                              "does not answer, so no host was touched"):
        r.deploy(str(source), "web")
    assert [c for _, c in world.calls[calls:]] == ["list", "list"]
    assert r.deploy(str(source), "web", skip_unreachable=True).ok
    assert lines[-1][0] == "h3" and any(h == "h1" and "no fleet lock" in line
                                        for h, line in lines)
