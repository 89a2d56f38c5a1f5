"""Bad input: one line on stderr, a non-zero exit, no traceback, and nothing changed."""

import json
import os

import pytest

from .conftest import edit_settings, new, put_server, sarge, snapshot

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


@pytest.fixture
def busy_home(running):
    """A home with one running instance, to check that bad input leaves it serving."""
    instance_id = new(running)
    put_server(running, instance_id)
    sarge(running, "start", instance_id, check=True)
    running.serving = instance_id
    return running


def assert_refused(h, args, before, code=None):
    result = sarge(h, *args)
    assert result.returncode != 0, (args, result.stdout)
    if code is not None:
        assert result.returncode == code
    assert result.stdout == ""
    assert result.stderr.startswith("sarge: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(h.path) == before
    return result.stderr


def test_bad_descriptions_are_refused(busy_home):
    before = snapshot(busy_home.path)
    for description in BAD_DESCRIPTIONS:
        assert_refused(busy_home, ["new", description], before, code=2)
    assert busy_home.supervisor.process(busy_home.serving + ":web")["statename"] == "RUNNING"


def test_bad_application_names_are_refused(busy_home):
    before = snapshot(busy_home.path)
    for name in BAD_NAMES:
        message = assert_refused(busy_home, ["new", json.dumps({"application_name": name})],
                                 before, code=2)
        assert "invalid application name" in message
    assert len(os.listdir(os.path.join(busy_home.path, "var", "instances"))) == 1


@pytest.mark.parametrize("command", ["start", "stop", "restart", "destroy", "status", "logs",
                                     "run"])
def test_bad_instance_ids_are_refused(busy_home, command):
    before = snapshot(busy_home.path)
    for instance_id in BAD_IDS:
        message = assert_refused(busy_home, [command, instance_id], before, code=2)
        assert "invalid instance id" in message
    message = assert_refused(busy_home, [command, "web-zzzzzz"], before, code=1)
    assert "no instance" in message
    assert busy_home.supervisor.process(busy_home.serving + ":web")["statename"] == "RUNNING"


def test_usage_errors_are_one_line(busy_home):
    before = snapshot(busy_home.path)
    for args in (["bogus"], ["start"], ["new"], ["logs", busy_home.serving, "-n", "x"],
                 ["list", "--bogus"]):
        message = assert_refused(busy_home, args, before, code=2)
        assert "--help" in message


def test_exhausted_port_range(home):
    edit_settings(home, {f"last = {home.settings.port_first + 199}":
                         f"last = {home.settings.port_first}"})
    new(home)
    before = snapshot(home.path)
    message = assert_refused(home, ["new", '{"application_name": "web"}'], before, code=1)
    assert "no free port left" in message


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
    message = assert_refused(home, ["new", '{"application_name": "web"}'], before, code=1)
    assert fragment in message and home.settings_path in message


def test_a_damaged_record_is_named(running):
    instance_id = new(running)
    with open(running.record_path(instance_id), "w") as f:
        f.write('{"id": "web-')  # as a power cut could leave it, without atomic writes
    before = snapshot(running.path)
    message = assert_refused(running, ["list"], before, code=1)
    assert running.record_path(instance_id) in message and "damaged" in message


def test_damaged_app_config_is_named(running):
    instance_id = new(running)
    put_server(running, instance_id)
    path = running.app_config_path("web")
    with open(path, "w") as f:
        f.write('{"A": 1}')
    before = snapshot(running.path)
    message = assert_refused(running, ["run", instance_id, "true"], before, code=1)
    assert path in message
