"""The Python of an app: the home's ([deploy] python, else sarge's own), or the one its
source asks for (runtime.txt, .python-version); refused up front when the app's user
cannot run it, as an interpreter under root's private home would be."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from sarge import pythons
from sarge.config import Settings
from sarge.errors import BuildError, DeployError, SettingsError

from .conftest import (
    WEBAPP,
    as_root,
    deploy,
    edit_settings,
    front,
    listen_port,
    python_for,
    sarge,
)
from .fakes import Rig

SYSTEM = "/usr/bin/python3"
needs_system = pytest.mark.skipif(not os.access(SYSTEM, os.X_OK), reason=f"no {SYSTEM}")


def system_version():
    return pythons.version_of(SYSTEM)


def closed_to_others(python=sys.executable) -> bool:
    """True when this Python lives under a folder other users cannot enter (/root)."""
    from sarge.users import RunAs

    return pythons.ownership.barrier(python, RunAs("nobody", 65534, 65534, "/")) is not None


@pytest.mark.fast
@pytest.mark.parametrize("name, text, asked", [
    ("runtime.txt", "python-3.11\n", (3, 11, None)),
    ("runtime.txt", "python-3.11.2", (3, 11, 2)),
    (".python-version", "3.12\n", (3, 12, None)),
    (".python-version", "# pyenv\n3.11.7\n3.10.1\n", (3, 11, 7)),
])
def test_what_a_source_asks_for(tmp_path, name, text, asked):
    (tmp_path / name).write_text(text)
    assert pythons.requested(str(tmp_path)) == (name, asked)


@pytest.mark.fast
@pytest.mark.parametrize("name, text", [
    ("runtime.txt", "pypy3.9-7.3"), ("runtime.txt", "3.11"), (".python-version", "myenv"),
    (".python-version", ""),
])
def test_what_sarge_does_not_understand_is_refused_in_one_line(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(BuildError, match=f"^{name} says .*; sarge understands a version"):
        pythons.requested(str(tmp_path))


@pytest.mark.fast
def test_runtime_txt_comes_before_python_version(tmp_path):
    (tmp_path / "runtime.txt").write_text("python-3.10")
    (tmp_path / ".python-version").write_text("3.12")
    assert pythons.requested(str(tmp_path)) == ("runtime.txt", (3, 10, None))
    (tmp_path / "runtime.txt").unlink()
    assert pythons.requested(str(tmp_path))[0] == ".python-version"
    (tmp_path / ".python-version").unlink()
    assert pythons.requested(str(tmp_path)) is None


@pytest.mark.fast
@needs_system
def test_the_homes_python_serves_when_it_is_the_version_asked(tmp_path):
    home = pythons.configured(Settings(python=SYSTEM))
    assert (home.path, home.why) == (SYSTEM, "[deploy] python")
    major, minor, micro = system_version()
    (tmp_path / "runtime.txt").write_text(f"python-{major}.{minor}.{micro + 5}")
    chosen = pythons.choose(str(tmp_path), home, search_path="")
    assert chosen.path == SYSTEM and chosen.why.startswith(f"runtime.txt asks {major}.{minor}.")


@pytest.mark.fast
@needs_system
def test_another_version_is_looked_for_on_path_then_in_usr_bin(tmp_path):
    major, minor, _ = system_version()
    (tmp_path / ".python-version").write_text(f"{major}.{minor}")
    other = pythons.Python("/nowhere/python", (2, 7, 18), "[deploy] python")
    chosen = pythons.choose(str(tmp_path), other, search_path="/nowhere")
    assert os.path.dirname(chosen.path) in pythons.FOLDERS
    assert chosen.version[:2] == (major, minor)
    assert chosen.why == f".python-version asks {major}.{minor}"


@pytest.mark.fast
def test_a_python_the_machine_lacks_is_refused_naming_where_sarge_looked(tmp_path):
    (tmp_path / "runtime.txt").write_text("python-3.99.1")
    with pytest.raises(BuildError) as info:
        pythons.choose(str(tmp_path), pythons.configured(Settings()), search_path="/nowhere")
    assert str(info.value) == ("runtime.txt asks for Python 3.99.1, and this machine has no "
                               "python3.99 (looked in PATH, /usr/local/bin, /usr/bin): install "
                               "it, or change runtime.txt")


@pytest.mark.fast
def test_a_deploy_of_a_source_that_asks_for_a_missing_python_fails_cleanly(
        tmp_path_factory, tmp_path):
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    try:
        source = tmp_path / "src"
        source.mkdir()
        (source / "Procfile").write_text("web: serve\n")
        (source / "runtime.txt").write_text("python-3.99")
        with pytest.raises(DeployError) as info:
            rig.deployer().deploy(str(source), "web", listen=f"127.0.0.1:{listen_port(51)}")
        assert "deploy failed at step 'environment': runtime.txt asks for Python 3.99" in str(
            info.value)
        assert rig.home.instances() == [] and rig.environments.built == []
    finally:
        rig.close()


def another_python():
    """(path, (major, minor, micro)) of an installed Python of another minor version than
    this one, or None."""
    import glob

    for path in sorted(glob.glob("/root/.pyenv/versions/3.*/bin/python3.*")
                       + glob.glob("/usr/bin/python3.*") + glob.glob("/usr/local/bin/python3.*")):
        if not os.path.basename(path).replace("python", "").replace(".", "").isdigit():
            continue
        try:
            version = pythons.version_of(path)
        except BuildError:
            continue
        if version[:2] != tuple(sys.version_info[:2]) and version >= (3, 8):
            return path, version
    return None


def test_a_source_that_asks_for_another_python_gets_a_virtualenv_of_it(running, webapp,
                                                                       tmp_path):
    """runtime.txt asks for a Python of another version than sarge's, found on PATH: the
    virtualenv is made with it, under another address than the home's Python gives the
    same requirements; a version the machine lacks fails the deploy, naming it."""
    found = another_python()
    if found is None:
        pytest.skip("no Python of another minor version than this one")
    path, (major, minor, micro) = found
    folder = tmp_path / "bin"
    folder.mkdir()
    os.symlink(path, folder / f"python{major}.{minor}")
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}

    def deploy_with_path(*args):
        return subprocess.run([running.bin_path("sarge"), "deploy", *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=300)

    port = listen_port(3)
    result = deploy_with_path(webapp, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    first = running.get(result.stdout.strip())
    (webapp / "runtime.txt").write_text(f"python-{major}.{minor}\n")
    (webapp / "VERSION").write_text("2")
    result = deploy_with_path(webapp, "--app", "web")
    assert result.returncode == 0, result.stderr
    second = running.get(result.stdout.strip())
    assert f"python {major}.{minor}.{micro} ({folder}/python{major}.{minor}; runtime.txt " \
           f"asks {major}.{minor})" in result.stderr
    assert second.virtualenv != first.virtualenv  # the interpreter is in the address
    assert front(port)[1].startswith("version 2")
    out = sarge(running, "run", second.id, "--", "python", "-c",
                "import json, sys; print(json.dumps(sys.version_info[:3]))", check=True)
    assert json.loads(out.stdout) == [major, minor, micro]

    (webapp / "runtime.txt").write_text("python-3.99\n")
    result = deploy_with_path(webapp, "--app", "web")
    assert result.returncode == 1
    assert "runtime.txt asks for Python 3.99, and this machine has no python3.99" in (
        result.stderr)
    assert f"the current version ({second.id}) keeps serving" in result.stderr


# -- an interpreter the app's user cannot run ----------------------------------------------------

@as_root
def test_init_with_a_user_who_cannot_run_sargess_python_is_refused(tmp_path, throwaway_user):
    if not closed_to_others():
        pytest.skip(f"{sys.executable} is one every user can run here")
    path = tmp_path / "home"
    argv = [sys.executable, "-m", "sarge", str(path), "init", "--user", throwaway_user.name]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{throwaway_user.name}, who runs the apps, cannot run {sys.executable}" in (
        result.stderr)
    assert f"add --python {SYSTEM}" in result.stderr
    assert not path.exists()
    python = python_for(throwaway_user)
    result = subprocess.run(argv + ["--python", python], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f'python = "{python}"' in (path / "etc" / "sarge.toml").read_text()


@as_root
def test_a_deploy_whose_user_cannot_run_the_homes_python_is_refused_up_front(
        open_home, throwaway_user, tmp_path):
    if not closed_to_others():
        pytest.skip(f"{sys.executable} is one every user can run here")
    h, user = open_home, throwaway_user
    edit_settings(h, {'default = ""': f'default = "{user.name}"'})  # [deploy] python unset
    source = tmp_path / "app"
    shutil.copytree(WEBAPP, source)
    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{listen_port(4)}")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert f"{user.name}, who runs the apps, cannot run {sys.executable} (sarge's own)" in (
        result.stderr)
    assert f'set [deploy] python = "{SYSTEM}" in {h.settings_path}' in result.stderr
    assert h.instances() == [] and "new " not in open(h.action_log).read()
    with pytest.raises(SettingsError, match="cannot enter /root"):
        pythons.check_runnable(sys.executable, "sarge's own", user, "fix it")
