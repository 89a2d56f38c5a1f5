"""Unpacking sources safely (sarge.unpack), and reading Procfiles: real files, real archives."""

import io
import os
import tarfile

import pytest

from sarge import build, unpack
from sarge.errors import BuildError


def make_tar(path, members):
    """members: (name, kind, data or link target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = value.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = value
            tar.addfile(info)
    return str(path)


UNSAFE = {
    "absolute path": [("/tmp/sarge-evil", "file", "x")],
    "dot-dot": [("app/../../evil", "file", "x")],
    "dot-dot at the start": [("../evil", "file", "x")],
    "symlink out (absolute)": [("link", "symlink", "/etc")],
    "symlink out (relative)": [("sub/link", "symlink", "../../outside")],
    "hard link out": [("hard", "hardlink", "../outside")],
    "hard link to an absolute path": [("hard", "hardlink", "/etc/passwd")],
    "device node": [("dev", "chr", None)],
    "fifo": [("pipe", "fifo", None)],
    "symlink then a file through it": [("d", "symlink", "sub"), ("sub", "dir", None),
                                       ("d/x", "file", "x")],
    # each looks inside as text; followed, l1 leaves by three levels through l2
    "a chain of symlinks": [("a/b/c", "dir", None), ("a/b/c/l2", "symlink", "../../.."),
                            ("l1", "symlink", "a/b/c/l2/../../../..")],
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused_before_anything_is_written(tmp_path, case):
    archive = make_tar(tmp_path / "a.tar.gz", [("ok.txt", "file", "fine")] + UNSAFE[case])
    target = tmp_path / "instance"
    target.mkdir()
    with pytest.raises(BuildError, match="refused"):
        unpack.unpack(archive, str(target))
    assert os.listdir(target) == []
    assert not os.path.exists("/tmp/sarge-evil")
    assert not (tmp_path / "outside").exists() and not (tmp_path / "evil").exists()


def test_a_safe_archive_with_inner_links_unpacks(tmp_path):
    archive = make_tar(tmp_path / "a.tgz", [
        ("app", "dir", None), ("app/main.py", "file", "print(1)"),
        ("current", "symlink", "app"), ("same.py", "hardlink", "app/main.py"),
        # links through links that stay inside (node_modules/.bin, lib64 -> lib)
        ("packages/pkg/bin", "dir", None), ("packages/pkg/bin/x", "file", "x"),
        ("node_modules/pkg", "symlink", "../packages/pkg"),
        ("node_modules/.bin/x", "symlink", "../pkg/bin/x"),
    ])
    target = tmp_path / "instance"
    target.mkdir()
    unpack.unpack(archive, str(target))
    assert (target / "app" / "main.py").read_text() == "print(1)"
    assert os.readlink(target / "current") == "app"
    assert (target / "same.py").read_text() == "print(1)"
    assert (target / "node_modules" / ".bin" / "x").read_text() == "x"


def test_a_folder_source_with_a_link_out_is_refused(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "Procfile").write_text("web: true\n")
    os.symlink("/etc", source / "etc")
    target = tmp_path / "instance"
    target.mkdir()
    with pytest.raises(BuildError, match="points out of the instance"):
        unpack.unpack(str(source), str(target))
    assert os.listdir(target) == []


def test_not_an_archive(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(BuildError, match="not a readable tar archive"):
        unpack.unpack(str(tmp_path / "x.tar"), str(tmp_path))
    (tmp_path / "x.zip").write_text("zip")
    with pytest.raises(BuildError, match="neither a directory nor"):
        unpack.unpack(str(tmp_path / "x.zip"), str(tmp_path))


def test_a_member_bigger_than_the_free_space_is_refused(tmp_path):
    archive = tmp_path / "big.tar"
    st = os.statvfs(tmp_path)
    info = tarfile.TarInfo("huge.bin")
    info.size = st.f_bavail * st.f_frsize + (1 << 30)  # 1 GiB more than is free
    with open(archive, "wb") as f:
        f.write(info.tobuf())
    # A sparse file: the member's data (zeros) and the end-of-archive blocks take no room.
    os.truncate(archive, 512 + (info.size + 511) // 512 * 512 + 1024)
    target = tmp_path / "instance"
    target.mkdir()
    with pytest.raises(BuildError, match="free"):
        unpack.unpack(str(archive), str(target))
    assert os.listdir(target) == []


@pytest.mark.parametrize("text, message", [
    ("worker: python w.py\n", "no 'web' process"),
    ("web python app.py\n", "line 1: not 'type: command'"),
    ("# c\n\nweb: a\nWeb: b\n", "line 4"),
    ("web: a\nweb: b\n", "defined twice"),
    ("web:\n", "line 1"),
    ("web: ok\n\x00garbage: x\n", "line 2"),
    ("web: ok\nbad-type: x\n", "line 2"),
])
def test_bad_procfiles(tmp_path, text, message):
    (tmp_path / "Procfile").write_text(text)
    with pytest.raises(BuildError, match=message):
        build.read_procfile(str(tmp_path))


def test_procfile_and_server(tmp_path):
    (tmp_path / "Procfile").write_text(
        "# comment\nweb: gunicorn app:app -b 127.0.0.1:$PORT\n\nworker:python w.py\n"
        "release: ./migrate --yes\n")
    assert build.read_procfile(str(tmp_path)) == {
        "web": "gunicorn app:app -b 127.0.0.1:$PORT", "worker": "python w.py",
        "release": "./migrate --yes"}
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(BuildError, match="neither a Procfile nor an executable server"):
        build.read_procfile(str(other))
    (other / "server").write_text("#!/bin/sh\n")
    os.chmod(other / "server", 0o755)
    assert build.read_procfile(str(other)) == {"web": None}


def test_run_logged_masks_credentials_and_reports_failure(tmp_path):
    log = tmp_path / "x.log"
    with pytest.raises(BuildError, match="exit status 3"):
        build.run_logged(["sh", "-c", "echo hello; exit 3", "https://bob:s3cret@example/x"],
                         str(log))
    text = log.read_text()
    assert "hello" in text and "s3cret" not in text and "https://***@example/x" in text


def test_link_checks_stay_quick_and_loops_are_harmless():
    import time

    from sarge.unpack import Member

    # each link doubles the path of the one before: 2**30 steps, were links not counted
    chain = [Member("x0", "symlink", 0, ".")] + [
        Member(f"x{k}", "symlink", 0, f"x{k - 1}/x{k - 1}") for k in range(1, 31)]
    start = time.monotonic()
    assert unpack.check_members(chain) == 0
    assert time.monotonic() - start < 5
    loops = [Member("a", "symlink", 0, "a"), Member("b", "symlink", 0, "c"),
             Member("c", "symlink", 0, "b")]
    assert unpack.check_members(loops) == 0  # they lead nowhere, so not out either
