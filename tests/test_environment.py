"""The environment a server sees, and values that must survive every config file."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import (
    as_root,
    get,
    kill_home,
    make_home,
    name_user,
    new,
    put_server,
    sarge,
    start_supervisord,
)

AWKWARD = {
    "PERCENT": "100%(here)s %% %",
    "DOLLAR": "$HOME ${PORT} $(id)",
    "QUOTES": "it's \"quoted\" `x`",
    "EQUALS": "a=b=c",
    "SPACES": "  leading and trailing  ",
    "UNICODE": "héllo wörld ☃",
    "SEMI": "x ;comment #not",
    "NEWLINE": "line one\nline two",
}


def write_config(h, app, values):
    path = h.app_config_path(app)
    with open(path, "w") as f:
        json.dump(values, f)
    os.chmod(path, 0o600)


def test_server_environment(running):
    instance_id = new(running)
    put_server(running, instance_id)
    write_config(running, "web", {**AWKWARD, "PORT": "1", "SARGE_APP": "nope"})
    venv = os.path.join(running.instance_dir(instance_id), ".venv")
    os.makedirs(os.path.join(venv, "bin"))
    sarge(running, "start", instance_id, check=True)
    port = running.get(instance_id).port
    env = json.loads(get(port, "/env")[1])
    for key, value in AWKWARD.items():
        assert env[key] == value, key
    assert env["PORT"] == str(port)
    assert env["SARGE_HOME"] == running.path
    assert env["SARGE_INSTANCE"] == instance_id
    assert env["SARGE_APP"] == "web"
    assert env["SARGE_DATA_DIR"] == running.data_dir("web")
    assert os.path.isdir(env["SARGE_DATA_DIR"])
    assert env["PATH"].split(os.pathsep)[0] == os.path.join(venv, "bin")
    assert env["VIRTUAL_ENV"] == venv
    assert env["PYTHONUNBUFFERED"] == "1"
    # secrets are never written where supervisorctl or its logs show them
    for path in (running.program_path(instance_id), running.supervisord_conf):
        with open(path) as f:
            text = f.read()
        assert "héllo" not in text and "a=b=c" not in text
    # `run` sees exactly the same variables
    result = subprocess.run(
        [os.path.join(running.path, "bin", "sarge"), "run", instance_id, sys.executable, "-c",
         "import json, os; print(json.dumps(dict(os.environ)))"],
        capture_output=True, text=True, cwd="/",
    )
    assert result.returncode == 0, result.stderr
    run_env = json.loads(result.stdout)
    for key in list(AWKWARD) + ["PORT", "SARGE_HOME", "SARGE_INSTANCE", "SARGE_APP",
                                "SARGE_DATA_DIR", "VIRTUAL_ENV", "PYTHONUNBUFFERED"]:
        assert run_env[key] == env[key], key
    assert run_env["PATH"].split(os.pathsep)[0] == os.path.join(venv, "bin")


def test_run_starts_in_the_instance_folder(running):
    instance_id = new(running)
    result = sarge(running, "run", instance_id, "pwd", check=True)
    assert result.stdout.strip() == running.instance_dir(instance_id)
    result = sarge(running, "run", instance_id, "sh", "-c", "exit 7")
    assert result.returncode == 7
    result = sarge(running, "run", instance_id, "--", "ls", "-d", ".")
    assert result.returncode == 0 and result.stdout.strip() == "."
    # SIGPIPE as a shell leaves it (Python ignores it): `yes` ends quietly when head has had
    # enough, instead of printing "Broken pipe"
    result = subprocess.run(f"{running.path}/bin/sarge run {instance_id} yes | head -1",
                            shell=True, capture_output=True, text=True, timeout=30)
    assert result.stdout == "y\n" and result.stderr == ""


def test_run_without_a_command_starts_a_shell(running):
    instance_id = new(running)
    result = subprocess.run([os.path.join(running.path, "bin", "sarge"), "run", instance_id],
                            input="echo $SARGE_INSTANCE $PORT\n", capture_output=True, text=True,
                            env={**os.environ, "SHELL": "/bin/sh"})
    assert result.stdout.split() == [instance_id, str(running.get(instance_id).port)]


@pytest.mark.parametrize("name", ["we %(ENV_HOME)s 100%", "dollar$HOME", "quote'd \"x\"", "ünï"])
def test_a_home_path_with_awkward_characters(tmp_path_factory, name):
    h = make_home(tmp_path_factory.mktemp("h") / name, offset=500)
    start_supervisord(h)
    try:
        instance_id = new(h)
        put_server(h, instance_id)
        sarge(h, "start", instance_id, check=True)
        env = json.loads(get(h.get(instance_id).port, "/env")[1])
        assert env["SARGE_HOME"] == h.path
        assert os.path.exists(h.log_path(instance_id))
    finally:
        kill_home(h)


@pytest.mark.parametrize("name", ["semi ;colon", "hash #tag", "trailing ", "x%(here)s"])
def test_a_home_path_that_cannot_be_written_safely_is_refused(tmp_path_factory, name):
    parent = tmp_path_factory.mktemp("h")
    result = subprocess.run([sys.executable, "-m", "sarge", str(parent / name), "init"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot be written" in result.stderr
    assert os.listdir(parent) == []


def test_run_sets_the_variables_given_with_e_over_the_others(running):
    instance_id = new(running)
    result = sarge(running, "run", instance_id, "-e", "A=1", "--env", "B=two words",
                   "-e", "PORT=9", "-e", "EMPTY=", "--", "sh", "-c",
                   'echo "$A|$B|$PORT|${EMPTY-unset}|$SARGE_INSTANCE"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"1|two words|9||{instance_id}\n"
    # a command's own -e, after --, is the command's
    result = sarge(running, "run", instance_id, "--", "sh", "-c", 'echo "$0 $1"', "-e", "x")
    assert (result.returncode, result.stdout) == (0, "-e x\n"), result.stderr


@pytest.mark.parametrize("assignment, message", [
    ("1A=x", "invalid variable name '1A'"),
    ("NOVALUE", "'NOVALUE' is not NAME=VALUE (-e)"),
    ("A-B=x", "invalid variable name 'A-B'"),
    ("A=line\nbreak", "invalid value for A"),
])
def test_run_refuses_a_bad_variable_as_a_usage_error(running, assignment, message):
    instance_id = new(running)
    result = sarge(running, "run", instance_id, "-e", assignment, "--", "touch", "ran")
    assert result.returncode == 2
    assert result.stderr.startswith("sarge: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not os.path.exists(os.path.join(running.instance_dir(instance_id), "ran"))


@as_root
def test_run_as_the_apps_user_gets_none_of_roots_environment_but_what_e_gives(
        open_home, throwaway_user):
    h = open_home
    name_user(h, throwaway_user.name)
    instance_id = new(h)
    env = {**os.environ, "OPERATOR_TOKEN": "s3cret", "LANG": "C.UTF-8"}
    argv = [os.path.join(h.path, "bin", "sarge"), "run", instance_id]
    script = ["--", "sh", "-c", 'echo "${OPERATOR_TOKEN-none}|$LANG|$(id -un)"']
    result = subprocess.run(argv + script, env=env, capture_output=True, text=True)
    assert result.stdout == f"none|C.UTF-8|{throwaway_user.name}\n", result.stderr
    result = subprocess.run(argv + ["-e", "OPERATOR_TOKEN=given"] + script, env=env,
                            capture_output=True, text=True)
    assert result.stdout == f"given|C.UTF-8|{throwaway_user.name}\n", result.stderr
