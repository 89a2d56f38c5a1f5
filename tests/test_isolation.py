"""Root never runs an app's code: the Pythons sarge runs as root are isolated from the
folder they start in, and an app's requirements are installed as the app's user, with
none of root's environment (root only, with throwaway users)."""

import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from .conftest import (
    as_root,
    deploy,
    edit_settings,
    front,
    listen_port,
    name_user,
    sarge,
    snapshot,
)

#: Modules an app may well have in its folder, each also a module that sarge, supervisor,
#: virtualenv or pip import when they start.
SHADOWS = ["secrets", "json", "random", "typing", "signal", "sarge", "supervisor",
           "virtualenv", "pip", "uv"]


@pytest.fixture
def marks():
    """A folder every user can write to, where the app's modules say who imported them."""
    folder = tempfile.mkdtemp(prefix="sarge-marks")
    os.chmod(folder, 0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def shadowing_app(path, marks, python="python"):
    """An app whose folder has modules named like the standard library's and sarge's;
    each one notes its importer's uid. The app imports its own ``secrets``."""
    path.mkdir()
    note = (f"import os\nwith open(os.path.join({marks!r}, 'log'), 'a') as _f:\n"
            f"    _f.write(__name__ + ' ' + str(os.getuid()) + '\\n')\n")
    for name in SHADOWS:
        if name in ("sarge", "supervisor", "pip"):
            (path / name).mkdir()
            (path / name / "__init__.py").write_text(note)
        else:
            (path / f"{name}.py").write_text(note + "VALUE = \"the app's own\"\n")
    (path / "app.py").write_text(
        "import os, socket\n"
        "import secrets  # the app's own module\n"
        "s = socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('127.0.0.1', int(os.environ['PORT'])))\n"
        "s.listen()\n"
        "while True:\n"
        "    c, _ = s.accept()\n"
        "    c.recv(65536)\n"
        "    body = secrets.VALUE.encode()\n"
        "    c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)\n"
        "    c.close()\n")
    (path / "Procfile").write_text(f"web: exec {python} app.py\n")
    (path / "requirements.txt").write_text("# nothing to install: the environment is made\n")
    return path


def imported(marks):
    try:
        with open(os.path.join(marks, "log")) as f:
            return [tuple(line.split()) for line in f.read().splitlines()]
    except FileNotFoundError:
        return []


def in_folder(h, cwd, *args):
    """bin/sarge (or another of bin/) typed by root in the folder ``cwd``."""
    tool = args[0] if args and args[0] in ("supervisorctl",) else "sarge"
    argv = [os.path.join(h.path, "bin", tool), *(args[1:] if tool != "sarge" else args)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


@as_root
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_root_never_imports_the_apps_modules(open_home, throwaway_user, marks, tmp_path,
                                             installer):
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    edit_settings(h, {'installer = "auto"': f'installer = "{installer}"'})
    source = shadowing_app(tmp_path / "app", marks)
    port = listen_port(60 + (installer == "uv"))

    # typed in the app's folder, as operators do: bin/sarge, bin/supervisorctl
    result = in_folder(h, source, "deploy", ".", "--app", "web", "--listen",
                       f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert in_folder(h, source, "list").returncode == 0
    assert in_folder(h, source, "supervisorctl", "status").returncode in (0, 3)
    assert front(port) == (200, "the app's own")  # the app still imports its own module

    seen = imported(marks)
    assert ("secrets", str(user.uid)) in seen
    assert [m for m in seen if m[1] == "0"] == [], seen  # none imported as root


@as_root
def test_the_launcher_starts_where_the_app_cannot_write(open_home, throwaway_user, tmp_path,
                                                        marks):
    """supervisord starts the root launcher in the home, not in the app's folder."""
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    source = shadowing_app(tmp_path / "app", marks, python="/usr/bin/python3")
    (source / "requirements.txt").unlink()
    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{listen_port(62)}")
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    import configparser

    program = configparser.RawConfigParser()
    program.read(h.program_path(instance_id))
    section = program[f"program:{instance_id}_web"]
    assert section["directory"] == h.path
    assert section["command"].split()[1:3] == ["-I", "-m"]
    for tool in ("sarge", "supervisord", "supervisorctl"):
        with open(os.path.join(h.path, "bin", tool)) as f:
            assert " -I -m " in f.read()
    assert [m for m in imported(marks) if m[1] == "0"] == []


def local_requirement(folder, marks, tag):
    """A local package whose setup.py notes who runs it, with what, and where."""
    pkg = folder / "localpkg"
    pkg.mkdir(parents=True)
    (pkg / "setup.py").write_text(
        "import os, json\n"
        f"with open(os.path.join({marks!r}, 'setup'), 'a') as f:\n"
        f"    f.write(json.dumps([{tag!r}, os.getuid(), os.environ.get('ROOT_TOKEN'),\n"
        "                        os.environ.get('PIP_INDEX_URL'), os.getcwd()]) + '\\n')\n"
        "from setuptools import setup\n"
        "setup(name='localpkg', version='1.0', py_modules=['localmod'])\n")
    (pkg / "localmod.py").write_text("X = 1\n")


@as_root
def test_requirements_are_built_as_the_app_user_without_roots_environment(
        open_home, throwaway_user, marks, tmp_path):
    """A local requirement's setup.py runs as the app's user, in the instance (a relative
    path is the app's, not the operator's), and sees none of root's variables; only the
    variables of etc/build.env reach the installer."""
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    edit_settings(h, {'installer = "auto"': 'installer = "pip"',
                      # the virtualenv's own setuptools: no index needed to build it
                      "pip_args = []": 'pip_args = ["--no-build-isolation"]'})
    source = tmp_path / "app"
    source.mkdir()
    (source / "Procfile").write_text("web: exec python -m http.server --bind 127.0.0.1 $PORT\n")
    (source / "requirements.txt").write_text("./localpkg\n")
    local_requirement(source, marks, "app")
    operator = tmp_path / "operator"  # where root types the command, with a decoy
    local_requirement(operator, marks, "decoy")
    build_env = os.path.join(h.path, "etc", "build.env")
    with open(build_env, "w") as f:
        f.write("# the index, with its credentials\nPIP_INDEX_URL=https://u:tok@127.0.0.1:9/x\n")
    os.chmod(build_env, 0o600)

    env = dict(os.environ, ROOT_TOKEN="root-only")
    result = subprocess.run(
        [os.path.join(h.path, "bin", "sarge"), "deploy", str(source), "--app", "web",
         "--listen", f"127.0.0.1:{listen_port(63)}"],
        cwd=operator, env=env, capture_output=True, text=True, timeout=300)
    with open(os.path.join(marks, "setup")) as f:
        runs = [json.loads(line) for line in f]
    assert runs, result.stderr
    for tag, uid, token, index, cwd in runs:
        assert (tag, uid, token) == ("app", user.uid, None)
        assert index == "https://u:tok@127.0.0.1:9/x"  # from etc/build.env
        assert cwd.startswith(h.path + "/web-")
    # setuptools writes into the package's folder, which its user cannot change: the
    # deploy fails, and says where
    assert result.returncode == 1 and "at step 'environment'" in result.stderr
    assert "Traceback" not in result.stderr.split("Last lines")[0]
    # credentials: neither in the log's command lines nor in the settings
    assert "u:tok" not in open(os.path.join(h.log_dir, "sarge.log")).read()


@as_root
def test_an_installed_environment_is_roots_and_only_readable_by_the_app(
        open_home, throwaway_user, tmp_path):
    h, user = open_home, throwaway_user
    name_user(h, user.name)  # and [deploy] python, one the user can run
    source = tmp_path / "app"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "apps", "webapp"), source)
    port = listen_port(64)
    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert front(port)[0] == 200
    venv = h.get(result.stdout.strip()).virtualenv
    assert os.path.basename(os.path.dirname(venv)) == "envs"
    for root, dirs, files in os.walk(venv):
        for name in [None, *dirs, *files]:
            path = root if name is None else os.path.join(root, name)
            st = os.lstat(path)
            assert st.st_uid == 0, path
            if not stat.S_ISLNK(st.st_mode) and name != ".sarge-complete":  # sarge's own
                assert st.st_gid == user.gid, path
                assert not st.st_mode & (stat.S_IWGRP | stat.S_IRWXO | stat.S_ISUID), path
    # the app's user cannot change what it runs
    probe = subprocess.run(["runuser", "-u", user.name, "--", "touch",
                            os.path.join(venv, "bin", "x")], capture_output=True)
    assert probe.returncode != 0
    cache = h.cache_dir(user.name)
    assert os.stat(cache).st_uid == user.uid


def test_credentials_in_pip_args_are_refused(home):
    edit_settings(home, {"pip_args = []":
                         'pip_args = ["--index-url", "https://me:s3cret@pypi.example/simple"]'})
    before = snapshot(home.path)
    result = sarge(home, "new", '{"application_name": "web"}')
    assert result.returncode == 1
    assert "build.env" in result.stderr and "s3cret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(home.path) == before


def test_a_readable_build_env_is_refused(home):
    from sarge.errors import SettingsError
    from sarge.variables import load_build_env

    path = home.build_env_path
    with open(path, "w") as f:
        f.write("PIP_INDEX_URL=https://u:p@x/simple\n")
    os.chmod(path, 0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        load_build_env(path)
    os.chmod(path, 0o600)
    assert load_build_env(path) == {"PIP_INDEX_URL": "https://u:p@x/simple"}
    with open(path, "a") as f:
        f.write("not an assignment\n")
    with pytest.raises(SettingsError, match="line 2"):
        load_build_env(path)
