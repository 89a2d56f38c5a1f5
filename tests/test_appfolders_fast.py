"""The fast tier of the build step and the declared folders (sarge-app.toml's writable,
persistent and static): each branch, on a real home with the fakes of tests/fakes.py.
The build and release commands are real shell commands; what they stand for (Django's
collectstatic and migrate, Flask's instance folder) is tested for real in
test_realapps.py."""

import os
import stat

import pytest

from sarge.errors import DeployError

from .conftest import port_base, state_files
from .fakes import Rig
from .test_deploy_fast import serves, state

pytestmark = pytest.mark.fast

LISTEN = f"127.0.0.1:{port_base() + 992}"  # never bound: the front-end is a fake


@pytest.fixture
def rig(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    yield rig
    rig.close()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src"
    path.mkdir()
    (path / "VERSION").write_text("1")
    (path / "Procfile").write_text(
        "web: serve\n"
        "build: mkdir -p out && echo built > out/app.css && echo building\n"
        "release: test -d instance && cp out/app.css \"$SARGE_DATA_DIR/released\"\n")
    (path / "sarge-app.toml").write_text(
        'writable = ["instance"]\npersistent = ["uploads"]\n[static]\n"/static/" = "out"\n')
    return path


def deploy(rig, source, **kwargs):
    return rig.deployer().deploy(str(source), "web", **kwargs)


def test_build_then_static_then_release_then_start(rig, source):
    instance = deploy(rig, source, listen=LISTEN)
    folder = rig.home.instance_dir(instance.id)
    steps = [step for step, _ in rig.steps]
    assert steps[:8] == ["new instance", "unpack", "environment", "folders", "build", "static",
                         "release", "start"]
    details = dict(rig.steps)
    assert details["build"] == "mkdir -p out && echo built > out/app.css && echo building"
    assert details["static"] == "/static/ 1 files"
    assert details["folders"] == "instance (writable), uploads -> $SARGE_DATA_DIR/uploads"
    assert set(instance.processes) == {"web"}  # build and release are steps
    with open(os.path.join(folder, "out", "app.css")) as f:  # its output: the instance's
        assert f.read() == "built\n"
    with open(rig.home.log_path(instance.id)) as f:
        assert "building" in f.read()  # its output: in the instance's log
    with open(os.path.join(rig.home.data_dir("web"), "released")) as f:
        assert f.read() == "built\n"  # the release ran after the build, in the instance
    assert stat.S_IMODE(os.stat(os.path.join(folder, "instance")).st_mode) == 0o700
    assert os.readlink(os.path.join(folder, "uploads")) == "../var/data/web/uploads"
    assert os.path.isdir(os.path.join(rig.home.data_dir("web"), "uploads"))
    assert rig.frontend.routes[0]["static"] == [["/static/", os.path.join(folder, "out")]]
    serves(rig, instance.id, 1)


def test_persistent_data_outlives_the_instance(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    with open(os.path.join(rig.home.instance_dir(first.id), "uploads", "a.txt"), "w") as f:
        f.write("kept")
    second = deploy(rig, source)
    with open(os.path.join(rig.home.instance_dir(second.id), "uploads", "a.txt")) as f:
        assert f.read() == "kept"


def test_a_shipped_writable_folder_is_the_instances_copy(rig, source):
    (source / "instance").mkdir()
    (source / "instance" / "config.py").write_text("X = 1\n")
    instance = deploy(rig, source, listen=LISTEN)
    path = os.path.join(rig.home.instance_dir(instance.id), "instance", "config.py")
    with open(path) as f:
        assert f.read() == "X = 1\n"


def test_a_shipped_empty_persistent_folder_is_replaced_by_the_link(rig, source):
    (source / "uploads").mkdir()
    (source / "uploads" / ".gitkeep").write_text("")
    instance = deploy(rig, source, listen=LISTEN)
    assert os.path.islink(os.path.join(rig.home.instance_dir(instance.id), "uploads"))


def test_no_build_no_declarations_no_steps(rig, source):
    (source / "Procfile").write_text("web: serve\n")
    (source / "sarge-app.toml").unlink()
    instance = deploy(rig, source, listen=LISTEN)
    assert [s for s, _ in rig.steps][:4] == ["new instance", "unpack", "environment", "start"]
    assert "static" not in rig.frontend.routes[0]
    serves(rig, instance.id, 1)


def failing_build(source):
    (source / "Procfile").write_text("web: serve\nbuild: echo collecting; exit 3\n")
    (source / "sarge-app.toml").unlink()


def missing_static(source):
    (source / "Procfile").write_text("web: serve\nbuild: echo no output\n")
    (source / "sarge-app.toml").write_text('[static]\n"/static/" = "staticfiles"\n')


def static_is_a_link(source):
    (source / "Procfile").write_text("web: serve\nbuild: ln -s /etc staticfiles\n")
    (source / "sarge-app.toml").write_text('[static]\n"/static/" = "staticfiles"\n')


def build_removes_the_writable_folder(source):
    (source / "Procfile").write_text("web: serve\nbuild: rmdir instance\n")
    (source / "sarge-app.toml").write_text('writable = ["instance"]\n')


def persistent_ships_files(source):
    (source / "uploads").mkdir()
    (source / "uploads" / "a.png").write_text("png")


def writable_is_a_file(source):
    (source / "instance").write_text("")


@pytest.mark.parametrize("breakage, step, message", [
    (failing_build, "build", "the build command `echo collecting; exit 3` failed"),
    (missing_static, "static", "[static] '/static/' = 'staticfiles': the instance has no "
     "folder staticfiles"),
    (static_is_a_link, "static", "staticfiles is not a folder (a file or a link)"),
    (build_removes_the_writable_folder, "build", "the build replaced the writable folder "
     "instance"),
    (persistent_ships_files, "environment", "persistent names 'uploads', but the source "
     "ships files in it"),
    (writable_is_a_file, "environment", "writable names 'instance', which the source ships "
     "as a file or a link"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_a_failed_build_or_folder_leaves_the_old_version_serving(rig, source, breakage, step,
                                                                 message):
    first = deploy(rig, source, listen=LISTEN)
    before, routes = state_files(rig.home), rig.frontend.routes
    breakage(source)
    with pytest.raises(DeployError) as info:
        deploy(rig, source)
    text = str(info.value)
    assert f"deploy failed at step '{step}'" in text and message in text, text
    assert "\n" not in text.split("\nLast lines")[0]  # one line, then the log's
    if step == "build":
        assert "collecting" in text or "rmdir" in text  # the build's output, from its log
    assert [i.id for i in rig.home.instances()] == [first.id]
    assert state_files(rig.home) == before
    assert rig.frontend.routes == routes
    assert state(rig).current == first.id
    serves(rig, first.id, 1)


# It failed at 'unpack': the persistent link of the current instance was refused as a
# link out of the instance, so `config --deploy` never worked for such an app (review).
def test_config_deploy_redeploys_without_the_instances_own_folders(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    folder = rig.home.instance_dir(first.id)
    with open(os.path.join(folder, "instance", "cache.db"), "w") as f:
        f.write("the running instance's own data")
    with open(os.path.join(folder, "uploads", "a.txt"), "w") as f:
        f.write("kept")
    second = rig.deployer().configure("web", ["A=1"])
    new = rig.home.instance_dir(second.id)
    assert os.listdir(os.path.join(new, "instance")) == []  # made anew, not copied
    assert os.readlink(os.path.join(new, "uploads")) == "../var/data/web/uploads"
    with open(os.path.join(new, "uploads", "a.txt")) as f:
        assert f.read() == "kept"
    serves(rig, second.id, 1)
