"""Unpacking that neither trusts an archive's owners and modes, on any Python, nor a folder
source that changes between the check and the copy; sources that are not sources; an
OSError in a deploy step, named with its step and file."""

import errno
import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import time

import pytest

from sarge import unpack
from sarge.errors import BuildError, DeployError

from .conftest import (
    as_root,
    deploy,
    front,
    listen_port,
    name_user,
    python_for,
    sarge,
    snapshot,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The oldest Python sarge supports that this machine has: Debian 12's, without tarfile's
# extraction filters (3.11.4 added them).
OLD_PYTHON = "/usr/bin/python3"


def hostile_tar(path, uid=4242, extra=()):
    """An archive whose members belong to ``uid`` with setuid, setgid, sticky and 0777
    modes; ``extra``: more (TarInfo, data or None)."""
    members = [("app", tarfile.DIRTYPE, 0o777, None),
               ("app/run", tarfile.REGTYPE, 0o4777, b"#!/bin/sh\necho hi\n"),
               ("app/lib.py", tarfile.REGTYPE, 0o2666, b"x = 1\n"),
               ("shared", tarfile.DIRTYPE, 0o1777, None),
               ("shared/note", tarfile.REGTYPE, 0o666, b"note"),
               ("current", tarfile.SYMTYPE, 0o777, "app")]
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, mode, value in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = kind, mode, uid, uid
            info.uname = info.gname = "attacker"
            info.mtime = 1_600_000_000
            if kind == tarfile.SYMTYPE:
                info.linkname = value
            elif value is not None:
                info.size = len(value)
            tar.addfile(info, io.BytesIO(value) if kind == tarfile.REGTYPE else None)
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def entries(folder):
    """{relative path: lstat} of everything under ``folder``."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = os.lstat(path)
    return found


def assert_roots_and_not_writable_by_others(folder):
    found = entries(folder)
    assert found
    for path, st in found.items():
        assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()), path
        if not stat.S_ISLNK(st.st_mode):
            assert stat.S_IMODE(st.st_mode) & 0o7022 == 0, (path, oct(st.st_mode))
    return found


def unpack_with(python, source, target):
    """Run sarge's unpack under ``python`` (the work tree on its path): (exit status, stderr)."""
    script = ("import sys, tarfile; sys.path.insert(0, sys.argv[1]); "
              "from sarge.unpack import unpack; "
              "print(hasattr(tarfile, 'data_filter')); unpack(sys.argv[2], sys.argv[3])")
    result = subprocess.run([python, "-I", "-c", script, ROOT, str(source), str(target)],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


# -- archives: owners and modes are never restored -------------------------------------------

@pytest.mark.skipif(not os.path.exists(OLD_PYTHON), reason=f"no {OLD_PYTHON}")
def test_an_archive_is_extracted_as_the_unpacking_users_on_a_python_without_filters(tmp_path):
    archive = hostile_tar(tmp_path / "a.tgz")
    target = tmp_path / "instance"
    target.mkdir()
    code, out, err = unpack_with(OLD_PYTHON, archive, target)
    assert code == 0, err
    found = assert_roots_and_not_writable_by_others(target)
    modes = {path: stat.S_IMODE(st.st_mode) for path, st in found.items()
             if not stat.S_ISLNK(st.st_mode)}
    # the permission bits are kept, less the special bits and group and other write
    assert modes == {"app": 0o755, "app/run": 0o755, "app/lib.py": 0o644, "shared": 0o755,
                     "shared/note": 0o644}
    assert os.readlink(target / "current") == "app"
    assert found["app/run"].st_mtime == 1_600_000_000 and found["app"].st_mtime == 1_600_000_000
    assert (target / "app" / "run").read_bytes() == b"#!/bin/sh\necho hi\n"


@pytest.mark.skipif(not os.path.exists(OLD_PYTHON), reason=f"no {OLD_PYTHON}")
def test_a_hard_link_through_a_link_cannot_reach_out_on_a_python_without_filters(tmp_path):
    """'s' -> '.' passes the checks; followed by the kernel, 's/../secret' is a file beside
    the instance, which a hard link would have given to the app."""
    secret = tmp_path / "secret"
    secret.write_text("root's")
    os.chmod(secret, 0o600)
    dot, hard = tarfile.TarInfo("s"), tarfile.TarInfo("h")
    dot.type, dot.linkname = tarfile.SYMTYPE, "."
    hard.type, hard.linkname = tarfile.LNKTYPE, "s/../secret"
    archive = hostile_tar(tmp_path / "a.tgz", extra=[(dot, None), (hard, None)])
    target = tmp_path / "instance"
    target.mkdir()
    code, out, err = unpack_with(OLD_PYTHON, archive, target)
    assert code != 0 and "'h'" in err
    st = os.stat(secret)  # not linked, nor made readable (tarfile chmods what it links)
    assert (st.st_nlink, stat.S_IMODE(st.st_mode)) == (1, 0o600)
    assert not (target / "h").exists()


def test_a_later_member_of_the_same_name_replaces_an_earlier_one(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in [("d", None), ("d/x", b"one"), ("d", None), ("d/x", b"two"),
                           ("Procfile", b"web: x\n")]:  # not one folder alone: see below
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE if data is None else tarfile.REGTYPE
            info.mode, info.size = 0o755, len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    target = tmp_path / "instance"
    target.mkdir()
    unpack.unpack(str(archive), str(target))
    assert (target / "d" / "x").read_bytes() == b"two"


@pytest.mark.parametrize("change, message", [
    (lambda p: os.chown(p, 4242, -1), "belongs to uid 4242"),
    (lambda p: os.chmod(p, 0o664), "mode 0664"),
    (lambda p: os.chmod(p, 0o4755), "mode 4755"),
])
def test_the_unpacked_folder_is_checked(tmp_path, change, message):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print(1)")
    os.chmod(tmp_path / "app" / "main.py", 0o644)
    unpack.check_tree(str(tmp_path))
    change(tmp_path / "app" / "main.py")
    with pytest.raises(BuildError, match=message) as caught:
        unpack.check_tree(str(tmp_path))
    assert str(tmp_path / "app" / "main.py") in str(caught.value)


def test_the_unpacked_folder_has_no_link_out(tmp_path):
    os.symlink("../elsewhere", tmp_path / "out")
    with pytest.raises(BuildError, match="points out of the instance"):
        unpack.check_tree(str(tmp_path))


# -- folder sources that change between the check and the copy ---------------------------------

@pytest.fixture
def source(tmp_path):
    """A folder source, as an app user could keep it: a file, a folder, inner links."""
    src = tmp_path / "src"
    (src / "pkg" / "bin").mkdir(parents=True)
    (src / "Procfile").write_text("web: true\n")
    (src / "settings.py").write_text("DEBUG = False\n")
    (src / "pkg" / "bin" / "x").write_text("x")
    os.chmod(src / "pkg" / "bin" / "x", 0o775)
    (src / "node_modules" / ".bin").mkdir(parents=True)
    os.symlink("../pkg", src / "node_modules" / "pkg")
    os.symlink("../pkg/bin/x", src / "node_modules" / ".bin" / "x")
    return src


@pytest.fixture
def secret(tmp_path):
    """A file only root may read, and a folder that holds one."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    path = folder / "shadow"
    path.write_text("root:SECRET-HASH:19000::::::\n")
    os.chmod(path, 0o600)
    return path


def target_of(tmp_path):
    target = tmp_path / "instance"
    target.mkdir()
    return target


def holds_secret(target):
    """Whether reading everything in ``target``, following links as a process would,
    shows the secret."""
    for root, dirs, files in os.walk(target, followlinks=True):
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as f:
                    if b"SECRET-HASH" in f.read(1 << 20):
                        return True
            except OSError:
                pass
    return False


def test_a_folder_source_keeps_its_inner_links_modes_and_mtimes(tmp_path, source):
    os.utime(source / "settings.py", (1_500_000_000, 1_500_000_000))
    target = target_of(tmp_path)
    unpack.unpack(str(source), str(target))
    assert os.readlink(target / "node_modules" / ".bin" / "x") == "../pkg/bin/x"
    assert (target / "node_modules" / ".bin" / "x").read_text() == "x"
    assert stat.S_IMODE(os.stat(target / "pkg" / "bin" / "x").st_mode) == 0o755
    assert os.stat(target / "settings.py").st_mtime == 1_500_000_000
    assert_roots_and_not_writable_by_others(target)


@pytest.mark.parametrize("swapped", ["settings.py", "pkg"])
def test_a_file_or_folder_swapped_for_a_link_out_after_the_check_is_refused(
        tmp_path, source, secret, swapped):
    target = target_of(tmp_path)

    def swap():
        path = source / swapped
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.symlink(secret if swapped == "settings.py" else secret.parent, path)

    with pytest.raises(BuildError, match=f"the link '{swapped}' points out of the instance"):
        unpack.unpack(str(source), str(target), after_check=swap)
    assert not holds_secret(target)
    assert not os.path.lexists(target / swapped)


def test_a_link_to_dev_zero_swapped_in_fails_at_once(tmp_path, source):
    target = target_of(tmp_path)

    def swap():
        (source / "settings.py").unlink()
        os.symlink("/dev/zero", source / "settings.py")

    start = time.monotonic()
    with pytest.raises(BuildError) as caught:
        unpack.unpack(str(source), str(target), after_check=swap)
    assert time.monotonic() - start < 5
    assert str(caught.value) == ("refused: the link 'settings.py' points out of the instance "
                                 "(to '/dev/zero')")


def test_a_fifo_swapped_in_is_refused_without_waiting(tmp_path, source):
    target = target_of(tmp_path)

    def swap():
        (source / "settings.py").unlink()
        os.mkfifo(source / "settings.py")

    with pytest.raises(BuildError, match="'settings.py' is a device node, FIFO or socket"):
        unpack.unpack(str(source), str(target), after_check=swap)


def test_a_file_that_grows_after_the_check_is_refused(tmp_path, source):
    target = target_of(tmp_path)
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    assert free > 8 << 20

    def grow():
        with open(source / "settings.py", "ab") as f:
            f.write(b"#" * (4 << 20))  # were it /dev/zero, it would fill the disk

    with pytest.raises(BuildError, match="'settings.py' grew after the source was checked"):
        unpack.unpack(str(source), str(target), after_check=grow)
    assert sum(st.st_size for st in entries(target).values()
               if stat.S_ISREG(st.st_mode)) < 1 << 20


def test_an_inner_link_swapped_for_one_that_leads_out_through_others_is_refused(
        tmp_path, source):
    target = target_of(tmp_path)

    def swap():  # node_modules/pkg -> .. and then .bin/x -> ../pkg/../.. leads out
        (source / "node_modules" / "pkg").unlink()
        os.symlink("..", source / "node_modules" / "pkg")
        (source / "node_modules" / ".bin" / "x").unlink()
        os.symlink("../pkg/..", source / "node_modules" / ".bin" / "x")

    with pytest.raises(BuildError, match="points out of the instance"):
        unpack.unpack(str(source), str(target), after_check=swap)


def test_a_source_nested_too_deep_is_refused_in_one_line(tmp_path):
    source = tmp_path / "src"
    deepest = source.joinpath(*["d"] * (unpack.MAX_DEPTH - 1))
    deepest.mkdir(parents=True)
    (deepest / "f").write_text("MAX_DEPTH names")
    (source / "Procfile").write_text("web: x\n")  # one folder alone would be stripped
    target = target_of(tmp_path)
    unpack.unpack(str(source), str(target))
    assert (target.joinpath(*["d"] * (unpack.MAX_DEPTH - 1)) / "f").exists()
    (deepest / "d").mkdir()
    (deepest / "d" / "f").write_text("one name too many")
    target = tmp_path / "again"
    target.mkdir()
    with pytest.raises(BuildError, match=f"nested more than {unpack.MAX_DEPTH} levels deep"):
        unpack.unpack(str(source), str(target))


# -- what is not a source ------------------------------------------------------------------------

NOT_SOURCES = [
    ("fake.tgz", b"not really gzip\n", "is a text file, not a readable tar archive"),
    ("fake.tar.gz", gzip.compress(b"text, gzipped\n", mtime=0),
     "is gzip-compressed data, not a readable tar archive"),
    ("empty.tar", b"", "is an empty file, not a readable tar archive"),
    ("x.tar", b"\x00garbage" * 100, "is binary data, not a readable tar archive"),
    ("notes.txt", b"hello\n", "is a text file, neither a directory nor a .tar"),
    ("app.zip", b"PK\x03\x04rest", "is a zip archive, neither a directory nor a .tar"),
    ("app.tar.xz", b"\xfd7zXZ\x00rest", "is xz-compressed data, neither a directory nor"),
]


@pytest.mark.parametrize("name, data, message", NOT_SOURCES, ids=[c[0] for c in NOT_SOURCES])
def test_what_is_not_a_source_is_named_in_one_line(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(BuildError) as caught:
        unpack.source_kind(str(tmp_path / name))
    text = str(caught.value)
    assert message in text and ".tar.gz or .tgz" in text and "\n" not in text


def test_a_deploy_of_what_is_not_a_source_is_one_line_and_changes_nothing(running, tmp_path):
    (tmp_path / "fake.tgz").write_text("just some text\n")
    (tmp_path / "notes.txt").write_text("just some text\n")
    before = snapshot(running.path)
    for name in ("fake.tgz", "notes.txt"):
        result = deploy(running, tmp_path / name, "--app", "web", "--listen",
                        f"127.0.0.1:{listen_port()}")
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("sarge: ") and result.stderr.count("\n") == 1, (
            result.stderr)
        assert "is a text file" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(running.path) == before


# -- deploys -----------------------------------------------------------------------------------

class FullDisk:
    """A home's environments whose install meets a full disk, as pip would."""

    def __init__(self, environments):
        self.environments = environments

    def path_for(self, requirements, user=None, **kwargs):
        return self.environments.path_for(requirements, user, **kwargs)

    def ensure(self, path, requirements, log, **build):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(path, "big.whl"))


def test_an_oserror_in_a_step_names_the_step_and_the_file(running, webapp):
    from sarge.deploy import Deployer

    real = Deployer(running).environments
    deployer = Deployer(running, environments=FullDisk(real))
    with pytest.raises(DeployError) as caught:
        deployer.deploy(str(webapp), "web", listen=f"127.0.0.1:{listen_port()}")
    message = str(caught.value)
    assert message.startswith("deploy failed at step 'environment': No space left on device: ")
    assert "big.whl. The new instance" in message and "\n" not in message
    assert json.loads(sarge(running, "list", "--json").stdout)["instances"] == []


@as_root
def test_a_deployed_archive_is_roots_and_its_user_cannot_change_it(open_home, throwaway_user,
                                                                    tmp_path):
    """Members that name the app's user as their owner, setuid and 0777: the deployed code
    is root's, without special bits, and the app's user cannot write it."""
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    python = python_for(user)
    procfile = tarfile.TarInfo("Procfile")
    text = f"web: exec {python} -m http.server --bind 127.0.0.1 $PORT\n".encode()
    procfile.size, procfile.mode, procfile.uid = len(text), 0o666, user.uid
    archive = hostile_tar(tmp_path / "app.tgz", uid=user.uid, extra=[(procfile, text)])
    port = listen_port(45)
    result = deploy(h, archive, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    assert front(port, "/shared/note") == (200, "note")
    folder = h.instance_dir(instance_id)
    for path, st in entries(folder).items():
        assert st.st_uid == 0, path
        if not stat.S_ISLNK(st.st_mode):
            assert stat.S_IMODE(st.st_mode) & 0o7022 == 0, (path, oct(st.st_mode))
    for path in ("app/run", "shared/note", "Procfile"):
        run = sarge(h, "run", instance_id, "sh", "-c", f"echo x >> {path}")
        assert run.returncode != 0, path
    assert sarge(h, "run", instance_id, "touch", "shared/new").returncode != 0
    assert sarge(h, "run", instance_id, "sh", "-c", "cat app/lib.py").stdout == "x = 1\n"

