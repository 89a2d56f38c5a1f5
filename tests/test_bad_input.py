"""Bad input: one line on stderr, a non-zero exit, no traceback, and nothing changed.

The tables run in this process (:func:`tests.conftest.invoke`: the command line with a
home whose supervisord is :class:`tests.fakes.FakeSupervisor`), each case compared with
the home as it was before the table. One test per command runs the real ``bin/sarge``
against a real supervisord, on one home for the whole module (deployed once, compared
with its snapshot after every case).
"""

import json

import pytest

from .conftest import (
    kill_home,
    make_home,
    new,
    put_server,
    refused_in_process,
    run_main,
    sarge,
    snapshot,
    start_supervisord,
)
from .fakes import Rig

BAD_DESCRIPTIONS = [
    "",
    "{",
    "not json",
    "[1, 2]",
    '"web"',
    "null",
    "{}",
    '{"application_name": "web", "colour": "blue"}',
    '{"application_name": 7}',
    '{"application_name": null}',
]

BAD_NAMES = [
    "", "a" * 33, "Web", "9web", "-web", "_web", "we/b", "..", ".", "../etc", "/abs",
    "web\nx", "web\r", "web\x00", "web%(here)s", "web x", "web;x", "web[x]", "wéb", "web.x",
    "a" * 300,
]

BAD_IDS = ["", ".", "..", "../web-abcdef", "/tmp", "web", "web-abc", "web-abcdefg",
           "web-abc/ef", "web-abc%ef", "web-abcde\n", "WEB-abcdef", "web-abcdef/.."]

ID_COMMANDS = ["start", "stop", "restart", "destroy", "status", "logs", "run"]


# -- the tables, in this process ------------------------------------------------------

@pytest.fixture
def busy(tmp_path_factory):
    """A home (fake supervisord) with one running instance, that bad input must leave
    running; ``busy.before``: its snapshot."""
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    instance = rig.home.lifecycle.new("web")
    put_server(rig.home, instance.id)
    rig.home.lifecycle.start(instance.id)
    rig.serving = instance.id
    rig.before = snapshot(rig.home.path)
    yield rig
    rig.close()


def refused(rig, *args):
    """Refused in one line, and the home exactly as it was, its instance running."""
    message = refused_in_process(rig.home, *args)
    assert snapshot(rig.home.path) == rig.before, args
    assert rig.supervisor.state(rig.serving + ":web") == "RUNNING", args
    return message


@pytest.mark.fast
def test_bad_descriptions_are_refused(busy):
    for description in BAD_DESCRIPTIONS:
        message = refused(busy, "new", description)
        assert "instance description" in message or "invalid application name" in message


@pytest.mark.fast
def test_bad_application_names_are_refused(busy):
    for name in BAD_NAMES:
        message = refused(busy, "new", json.dumps({"application_name": name}))
        assert "invalid application name" in message
    assert len(busy.home.instances()) == 1


@pytest.mark.fast
@pytest.mark.parametrize("command", [c for c in ID_COMMANDS if c != "run"])  # run: it execs
def test_bad_instance_ids_are_refused(busy, command):
    for instance_id in BAD_IDS + ["web-zzzzzz"]:
        message = refused(busy, command, instance_id)
        assert "invalid instance id" in message or "no instance" in message, message


@pytest.mark.fast
def test_usage_errors_are_one_line_with_exit_status_2(home):
    before = snapshot(home.path)
    for args in (["bogus"], ["start"], ["new"], ["logs", "web-abcdef", "-n", "x"],
                 ["list", "--bogus"], ["deploy", "."], ["config"]):
        code, out, err = run_main([home.path, *args])
        assert code == 2 and out == "", (args, code, out)
        assert err.startswith("sarge: ") and err.count("\n") == 1, (args, err)
        assert "--help" in err
    assert snapshot(home.path) == before


@pytest.mark.fast
def test_main_turns_each_kind_of_error_into_one_line(home, tmp_path):
    """What :func:`sarge.cli.main` does with a SargeError, with a folder that is not a
    home, with input nested too deep for Python's parser."""
    cases = [
        ([home.path, "start", "web-zzzzzz"], 1, "no instance 'web-zzzzzz' in this home"),
        ([tmp_path / "nothome", "list"], 1, f"sarge {tmp_path / 'nothome'} init"),
        ([home.path, "new", "[" * 100000], 2, "nested too deeply"),
    ]
    for argv, status, fragment in cases:
        code, out, err = run_main(argv)
        assert (code, out) == (status, ""), (argv, code, out)
        assert err.startswith("sarge: ") and err.count("\n") == 1 and fragment in err, err
        assert "Traceback" not in err


@pytest.mark.fast
def test_exhausted_port_range(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("f") / "home", settings={
        f"last = {Rig.port_first() + 199}": f"last = {Rig.port_first()}"})
    try:
        rig.home.lifecycle.new("web")
        before = snapshot(rig.home.path)
        assert "no free port left" in refused_in_process(rig.home, "new",
                                                         '{"application_name": "web"}')
        assert snapshot(rig.home.path) == before
    finally:
        rig.close()


@pytest.mark.fast
@pytest.mark.parametrize("text, fragment", [
    ("[ports]\nfirst = 'x'\n", "must be a whole number"),
    ("[ports]\nfirst = 6000\nlast = 5000\n", "first <= last"),
    ("[ports]\nfrist = 6000\n", "unknown setting [ports] frist"),
    ("[ports\n", "not valid TOML"),
    ("[processes]\nstopwaitsecs = 0\n", ">= 1"),
])
def test_bad_settings_are_reported_with_the_file(home, text, fragment):
    with open(home.settings_path, "w") as f:
        f.write(text)
    before = snapshot(home.path)
    code, out, err = run_main([home.path, "new", '{"application_name": "web"}'])
    assert (code, out) == (1, "") and err.count("\n") == 1, err
    assert fragment in err and home.settings_path in err
    assert snapshot(home.path) == before


@pytest.mark.fast
def test_a_damaged_record_is_named(home):
    instance = home.lifecycle.new("web")  # supervisord is down: it learns of it when it starts
    with open(home.record_path(instance.id), "w") as f:
        f.write('{"id": "web-')  # as a power cut could leave it, without atomic writes
    before = snapshot(home.path)
    code, out, err = run_main([home.path, "list"])
    assert (code, out) == (1, "") and err.count("\n") == 1, err
    assert home.record_path(instance.id) in err and "damaged" in err
    assert snapshot(home.path) == before


def test_damaged_app_config_is_named(home):
    """``run`` execs: a real process (no supervisord needed)."""
    instance_id = new(home)
    put_server(home, instance_id)
    path = home.app_config_path("web")
    with open(path, "w") as f:
        f.write('{"A": 1}')
    before = snapshot(home.path)
    result = sarge(home, "run", instance_id, "true")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("sarge: ") and result.stderr.count("\n") == 1
    assert path in result.stderr
    assert snapshot(home.path) == before


# -- one test per command with the real bin/sarge and supervisord ------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """One home for the module's real-process tests: a real supervisord and one running
    instance; ``real.before`` is its snapshot, which every case must leave as it was."""
    h = make_home(tmp_path_factory.mktemp("h") / "home", offset=200)
    start_supervisord(h)
    try:
        h.serving = new(h)
        put_server(h, h.serving)
        sarge(h, "start", h.serving, check=True)
        h.before = snapshot(h.path)
        yield h
    finally:
        kill_home(h)


REAL_CASES = {
    "new": [["new", "{"], ["new", json.dumps({"application_name": "../etc"})]],
    **{command: [[command, "../web-abcdef"], [command, "web-zzzzzz"]]
       for command in ID_COMMANDS if command != "run"},
    "run": [["run", instance_id] for instance_id in BAD_IDS + ["web-zzzzzz"]],
    "list": [["list", "--bogus"]],
}


@pytest.mark.xdist_group("bad_input_real")
@pytest.mark.parametrize("command", sorted(REAL_CASES))
def test_the_real_command_line_refuses_bad_input(real, command):
    for args in REAL_CASES[command]:
        result = sarge(real, *args)
        # a usage error is 2 (click's and sarge's own); a well-formed id of no instance, 1
        assert result.returncode == (1 if args[-1] == "web-zzzzzz" else 2), (args, result)
        assert result.stdout == ""
        assert result.stderr.startswith("sarge: ") and result.stderr.count("\n") == 1, (
            args, result.stderr)
        assert "Traceback" not in result.stderr
        assert snapshot(real.path) == real.before, args  # the module's: nothing leaks on
        assert real.supervisor.process(real.serving + ":web")["statename"] == "RUNNING"


@pytest.mark.parametrize("args, status", [
    (["new", "{bad"], 2),                         # sarge's UsageError: 2, as click's
    (["new", '{"application_name": "Bad"}'], 2),
    (["start", "../etc"], 2),
    (["list", "--bogus"], 2),                     # click's own usage error
    (["start", "web-zzzzzz"], 1),                 # well-formed, but no such instance
    (["status"], 7),                              # supervisord is not running: as supervisorctl
])
def test_exit_statuses(home, args, status):
    result = sarge(home, *args)
    assert result.returncode == status, (args, result.stderr)
    assert result.stderr.startswith("sarge: ") and result.stderr.count("\n") == 1
