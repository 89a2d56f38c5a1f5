"""A source whose root holds one folder and nothing else (``tar czf app.tgz app/``, ``git
archive --prefix=app/``, a GitHub tarball's ``owner-repo-sha/``, a folder with one
subfolder): that folder's content is the app, with every check of sarge.unpack."""

import io
import os
import shutil
import subprocess
import tarfile

import pytest

from sarge import unpack
from sarge.errors import BuildError, DeployError

from .conftest import WEBAPP, deploy, front, listen_port, wait_until
from .fakes import Rig


def add(tar, name, kind=tarfile.REGTYPE, data=b"", target=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def archive(path, *members):
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            add(tar, *member)
    return str(path)


def listing(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, dirs, files in os.walk(folder) for name in dirs + files)


@pytest.mark.fast
def test_tar_of_a_folder_is_unpacked_from_inside_it(tmp_path):
    """``tar czf app.tgz app/``, by tar itself."""
    shutil.copytree(WEBAPP, tmp_path / "app")
    os.link(tmp_path / "app" / "Procfile", tmp_path / "app" / "Procfile.hard")
    os.symlink("Procfile", tmp_path / "app" / "Procfile.soft")
    subprocess.run(["tar", "czf", "app.tgz", "app/"], cwd=tmp_path, check=True)
    target = tmp_path / "instance"
    target.mkdir()
    assert unpack.unpack(str(tmp_path / "app.tgz"), str(target)) == "app"
    assert listing(target) == listing(tmp_path / "app")
    assert os.readlink(target / "Procfile.soft") == "Procfile"
    assert os.stat(target / "Procfile.hard").st_ino == os.stat(target / "Procfile").st_ino


@pytest.mark.fast
@pytest.mark.parametrize("members, message", [
    ([("app", tarfile.DIRTYPE), ("app/Procfile", tarfile.REGTYPE, b"web: x\n"),
      ("app/up", tarfile.SYMTYPE, b"", "../etc")], "the link 'up' points out of the instance"),
    ([("app/Procfile", tarfile.REGTYPE, b"web: x\n"),
      ("app/hard", tarfile.LNKTYPE, b"", "other/file")], "the link 'hard' points out"),
    ([("app/Procfile", tarfile.REGTYPE, b"web: x\n"),
      ("app/fifo", tarfile.FIFOTYPE)], "'fifo' is a device node, FIFO or socket"),
    ([("app", tarfile.DIRTYPE), ("app/../../x", tarfile.REGTYPE, b"x")],
     "points out of the instance ('..')"),
])
def test_the_folders_content_passes_every_check(tmp_path, members, message):
    target = tmp_path / "instance"
    target.mkdir()
    with pytest.raises(BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        unpack.unpack(archive(tmp_path / "app.tgz", *members), str(target))


@pytest.mark.fast
@pytest.mark.parametrize("members", [
    [("app", tarfile.DIRTYPE), ("app/Procfile", tarfile.REGTYPE, b"w"), ("README", )],
    [("Procfile", tarfile.REGTYPE, b"web: x\n")],
    [("app", tarfile.SYMTYPE, b"", "."), ],
    [("./", tarfile.DIRTYPE), ("./Procfile", tarfile.REGTYPE, b"web: x\n")],
], ids=["a folder and a file", "a file", "a link", "dot"])
def test_a_root_with_more_or_other_than_one_folder_is_unpacked_as_it_is(tmp_path, members):
    target = tmp_path / "instance"
    target.mkdir()
    assert unpack.unpack(archive(tmp_path / "app.tgz", *members), str(target)) is None


@pytest.mark.fast
def test_a_folder_with_one_subfolder_is_copied_from_it(tmp_path):
    shutil.copytree(WEBAPP, tmp_path / "src" / "webapp-1.0")
    target = tmp_path / "instance"
    target.mkdir()
    assert unpack.unpack(str(tmp_path / "src"), str(target)) == "webapp-1.0"
    assert listing(target) == listing(tmp_path / "src" / "webapp-1.0")
    (tmp_path / "src2").mkdir()  # its one entry is a link to a folder: not a folder
    os.symlink(WEBAPP, tmp_path / "src2" / "app")
    (tmp_path / "instance2").mkdir()
    with pytest.raises(BuildError, match="points out of the instance"):
        unpack.unpack(str(tmp_path / "src2"), str(tmp_path / "instance2"))


@pytest.mark.fast
def test_a_source_with_nothing_to_deploy_says_what_its_root_holds(tmp_path_factory, tmp_path):
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    try:
        source = archive(tmp_path / "docs.tgz", ("README.md", tarfile.REGTYPE, b"hi"),
                         ("docs", tarfile.DIRTYPE), ("setup.py", tarfile.REGTYPE, b""))
        with pytest.raises(DeployError) as info:
            rig.deployer().deploy(source, "web", listen=f"127.0.0.1:{listen_port(50)}")
        assert ("neither a Procfile nor an executable server at its root, which holds "
                "README.md, docs/, setup.py") in str(info.value)
        source = archive(tmp_path / "one.tgz", ("proj-1.0/README", tarfile.REGTYPE, b"hi"))
        with pytest.raises(DeployError, match="at its root, which holds README"):
            rig.deployer().deploy(source, "web", listen=f"127.0.0.1:{listen_port(50)}")
        assert rig.home.instances() == []
    finally:
        rig.close()


def test_a_git_archive_with_a_prefix_deploys_and_says_which_folder(running, tmp_path):
    """``git archive --prefix=owner-repo-sha/``, as a GitHub tarball is: a pax header with
    the commit, then every file under the prefix."""
    repo = tmp_path / "repo"
    shutil.copytree(WEBAPP, repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "v1"]):
        subprocess.run(git + args, check=True)
    subprocess.run(git + ["archive", "--format=tar.gz", "--prefix=owner-repo-0123abc/",
                          "-o", str(tmp_path / "repo.tar.gz"), "HEAD"], check=True)
    port = listen_port(2)
    result = deploy(running, tmp_path / "repo.tar.gz", "--app", "web",
                    "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert "repo.tar.gz (the content of its one folder, owner-repo-0123abc/)" in result.stderr
    instance_id = result.stdout.strip()
    assert wait_until(lambda: front(port), 10, "the app", ignore=(OSError,)) == (
        200, f"version 1 from {instance_id}\n")
    assert os.path.isfile(os.path.join(running.instance_dir(instance_id), "Procfile"))
