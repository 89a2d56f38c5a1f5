"""``sarge package``: the same tree gives the same bytes (twice, and from two clones with
other mtimes and umasks); what is left out (.git, git's ignored files, .sargeignore);
the manifest and its verification; and, with a real supervisord and nginx, a deploy of a
packaged archive (its revision in list, status and the history), a tampered archive
refused with nothing changed, an offline deploy from the archive's wheelhouse."""

import hashlib
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from sarge.errors import ManifestMismatch
from sarge.package import verify
from sarge.unpack import unpack

from .conftest import (
    WEBAPP,
    WHEELS,
    front,
    kill_home,
    listen_port,
    make_home,
    needs_wheels,
    run_main,
    sarge,
    start_supervisord,
    state_files,
    wait_for_state,
)

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c",
       "init.defaultBranch=main"]


def git(folder, *args):
    return subprocess.run([*GIT, "-C", str(folder), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def package(source, output, *args):
    code, out, err = run_main(["package", source, "-o", output, *args])
    assert code == 0, (out, err)
    return out.strip(), err


def members(archive):
    with tarfile.open(archive) as tar:
        return {m.name: m for m in tar.getmembers()}


def manifest_of(archive):
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile("sarge-manifest.json"))


@pytest.fixture
def repo(tmp_path):
    """A git repository of the webapp, with an executable, a subfolder and ignores."""
    path = tmp_path / "repo"
    shutil.copytree(WEBAPP, path)
    (path / "bin").mkdir()
    (path / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(path / "bin" / "tool", 0o755)
    (path / ".gitignore").write_text("*.log\nbuild/\n")
    (path / ".sargeignore").write_text("docs/\n*.md\n!KEEP.md\n")
    for name in ("docs/guide.txt", "README.md", "KEEP.md", "build/out.txt", "debug.log"):
        (path / name).parent.mkdir(exist_ok=True)
        (path / name).write_text(name)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "one")
    return path


@pytest.mark.fast
def test_package_twice_gives_the_same_bytes(tmp_path, repo):
    first, err = package(repo, tmp_path / "a.tar.gz")
    second, _ = package(repo, tmp_path / "b.tar.gz")
    data = (tmp_path / "a.tar.gz").read_bytes()
    code, out, _ = run_main(["package", repo, "-o", tmp_path / "c.tar.gz", "--json"])
    done = json.loads(out)
    assert code == 0 and done["sha256"] == first and done["files"] == 8, done
    assert done["revision"] == {"git": git(repo, "rev-parse", "HEAD"), "dirty": False}
    assert done["wheels"] == [] and done["findings"][0]["severity"] == "warning"
    assert first == second == hashlib.sha256(data).hexdigest()
    assert data == (tmp_path / "b.tar.gz").read_bytes()
    assert f"{tmp_path / 'a.tar.gz'}: 8 files, git {git(repo, 'rev-parse', 'HEAD')[:12]}" in err
    found = members(tmp_path / "a.tar.gz")
    assert sorted(found) == [".gitignore", ".sargeignore", "KEEP.md", "Procfile", "VERSION",
                             "app.py", "bin", "bin/tool", "requirements.txt",
                             "sarge-manifest.json"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in found.values()} == {
        (315532800, 0, 0, "", "")}
    assert found["bin/tool"].mode == 0o755 and found["app.py"].mode == 0o644
    assert data[4:8] == b"\0\0\0\0"  # gzip's own mtime


@pytest.mark.fast
def test_two_clones_with_other_mtimes_and_umasks_give_the_same_archive(tmp_path, repo):
    one, two = tmp_path / "one", tmp_path / "elsewhere" / "two"
    git(tmp_path, "clone", "-q", str(repo), str(one))
    old = os.umask(0o002)
    try:
        git(tmp_path, "clone", "-q", str(repo), str(two))
    finally:
        os.umask(old)
    for path in two.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000), follow_symlinks=False)
    a, _ = package(one, tmp_path / "one.tar.gz")
    b, _ = package(two, tmp_path / "two.tar.gz")
    assert a == b
    manifest = manifest_of(tmp_path / "one.tar.gz")
    assert manifest["revision"] == {"git": git(repo, "rev-parse", "HEAD"), "dirty": False}
    assert manifest["procfile"] == {"web": open(os.path.join(WEBAPP, "Procfile")).read()
                                    .partition(": ")[2].strip()}
    assert manifest["requirements_sha256"] == hashlib.sha256(b"gunicorn\n").hexdigest()
    assert manifest["packager"].startswith("sarge ") and manifest["wheels"] is None
    assert manifest["files"]["app.py"]["sha256"] == hashlib.sha256(
        (one / "app.py").read_bytes()).hexdigest()
    (two / "VERSION").write_text("2")  # a change not committed: dirty, and other bytes
    c, _ = package(two, tmp_path / "three.tar.gz")
    assert c != a and manifest_of(tmp_path / "three.tar.gz")["revision"]["dirty"] is True


@pytest.mark.fast
def test_what_is_left_out(tmp_path, repo):
    """.git, git's ignored files (tracked or not), .sargeignore's patterns (a negation
    kept), the archive itself when written inside the source; without git, .sargeignore
    alone (and .git still)."""
    (repo / "untracked.txt").write_text("shipped: git would commit it")
    (repo / "other.log").write_text("ignored by git")
    package(repo, repo / "app.tar.gz")
    package(repo, repo / "app.tar.gz")  # the first archive is not packed into the second
    names = set(members(repo / "app.tar.gz"))
    assert "untracked.txt" in names and "KEEP.md" in names
    assert not names & {"README.md", "docs", "docs/guide.txt", "build/out.txt", "debug.log",
                        "other.log", "app.tar.gz"}
    assert not any(n == ".git" or n.startswith(".git/") for n in names)
    shutil.rmtree(repo / ".git")
    package(repo, tmp_path / "plain.tar.gz")
    names = set(members(tmp_path / "plain.tar.gz"))
    assert {"debug.log", "build/out.txt", "app.tar.gz"} <= names  # no git: only .sargeignore
    assert not names & {"README.md", "docs/guide.txt"}
    assert manifest_of(tmp_path / "plain.tar.gz")["revision"] is None


@pytest.mark.fast
def test_an_undeployable_source_is_refused_and_nothing_is_written(tmp_path):
    source = tmp_path / "app"
    source.mkdir()
    (source / "Procfile").write_text("web gunicorn\n")
    (source / "requirements.txt").write_text("flask\n")
    code, out, err = run_main(["package", source, "-o", tmp_path / "app.tar.gz"])
    assert code == 1 and out == "", (out, err)
    assert err.splitlines() == [
        "Procfile: error: the Procfile has no 'web' process, the one that serves $PORT",
        "Procfile:1: error: not 'type: command' (type: lowercase letters, digits and _): "
        "'web gunicorn'; write one 'type: command' a line",
        "requirements.txt:1: warning: flask is not pinned: write flask==VERSION (pip freeze "
        "says which)",
        f"sarge: {source} is not deployable (2 error(s) above): nothing was packaged"]
    assert sorted(os.listdir(tmp_path)) == ["app"]
    code, _, err = run_main(["package", source, "-o", tmp_path / "app.zip"])
    assert code == 1 and "name the archive NAME.tar.gz" in err
    (source / "Procfile").write_text("web: ./serve $PORT\n")
    code, _, err = run_main(["package", source, "-o", tmp_path / "x.tar.gz", "--wheels",
                             "--pip-arg=--no-index", "--pip-arg=--find-links=/nonexistent"])
    assert code == 1 and "pip wheel could not make the wheelhouse" in err, err
    assert sorted(os.listdir(tmp_path)) == ["app"]


@pytest.mark.fast
@pytest.mark.parametrize("change,words", [
    (lambda d: (d / "app.py").write_text("import os; os.system('id')\n"),
     "app.py has changed (content)"),
    (lambda d: (d / "VERSION").unlink(), "VERSION is missing"),
    (lambda d: (d / "sitecustomize.py").write_text(""), "sitecustomize.py is not in the "
                                                        "manifest (added)"),
    (lambda d: os.chmod(d / "app.py", 0o755), "app.py has changed (mode)"),
    (lambda d: (d / "sarge-manifest.json").write_text("{"), "is not a manifest sarge can"),
])
def test_the_manifest_finds_each_file_changed_since_packaging(tmp_path, webapp, change,
                                                              words):
    archive = tmp_path / "app.tar.gz"
    package(webapp, archive)
    folder = tmp_path / "unpacked"
    folder.mkdir()
    unpack(str(archive), str(folder))
    assert verify(str(folder))["files"].keys() == {"Procfile", "VERSION", "app.py",
                                                   "requirements.txt"}
    change(folder)
    with pytest.raises(ManifestMismatch) as raised:
        verify(str(folder))
    assert words in str(raised.value) and "\n" not in str(raised.value)


def tamper(archive, tampered, name="VERSION", data=b"evil\n"):
    """A copy of ``archive`` with the file ``name`` changed (its manifest as it was)."""
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            content = src.extractfile(member).read() if member.isfile() else None
            if member.name == name:
                content, member.size = data, len(data)
            dst.addfile(member, None if content is None else __import__("io").BytesIO(content))
    return tampered


@pytest.mark.fast
def test_validate_names_the_file_of_a_tampered_archive(tmp_path, webapp):
    package(webapp, tmp_path / "app.tar.gz")
    assert run_main(["validate", tmp_path / "app.tar.gz"])[0] == 0
    code, out, _ = run_main(["validate", tamper(tmp_path / "app.tar.gz", tmp_path / "t.tar.gz")])
    assert code == 1 and "VERSION: error: has changed (content) since the archive was " \
                         "packaged (sarge-manifest.json)" in out, out


# -- deploys of packaged archives, with a real supervisord and nginx -------------------------

#: An index nothing answers: what a deploy installs comes from the archive's wheelhouse.
NO_INDEX = {"pip_args = []": 'pip_args = ["--index-url", "http://127.0.0.1:9/simple/"]'}


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A home (supervisord running) whose index answers nothing, and two archives of the
    webapp from a git work tree, with wheelhouses: version 1, and version 2 dirty."""
    needs_wheels()
    tmp = tmp_path_factory.mktemp("pack")
    h = make_home(tmp / "home", settings=NO_INDEX)
    source = tmp / "src"
    shutil.copytree(WEBAPP, source)
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "v1")
    offline = ["--wheels", "--pip-arg=--no-index", f"--pip-arg=--find-links={WHEELS}"]
    package(source, tmp / "v1.tar.gz", *offline)
    (source / "VERSION").write_text("2\n")
    package(source, tmp / "v2.tar.gz", *offline)
    h.commit = git(source, "rev-parse", "HEAD")
    h.archives = tmp / "v1.tar.gz", tmp / "v2.tar.gz"
    start_supervisord(h)
    yield h
    kill_home(h)


@pytest.mark.xdist_group("package_real")
def test_a_packaged_archive_deploys_offline_with_its_revision(packed):
    """From the wheelhouse alone (the home's index answers nothing); the revision in
    list and status (table and JSON) and in the history."""
    port = listen_port(10)
    v1, v2 = packed.archives
    assert "sarge-wheels/" in " ".join(members(v1)) and manifest_of(v1)["wheels"]
    result = sarge(packed, "deploy", v1, "--app", "web", "--listen", f"127.0.0.1:{port}",
                   timeout=300)
    assert result.returncode == 0, result.stderr
    first = result.stdout.strip()
    assert "4 files as its manifest says" not in result.stderr  # the wheels are files too
    assert "files as its manifest says" in result.stderr
    assert "from its wheelhouse" in result.stderr, result.stderr
    log = open(packed.log_path(first)).read()
    assert f"--no-index --find-links {packed.instance_dir(first)}/sarge-wheels" in log
    assert front(port) == (200, f"version 1 from {first}\n")
    result = sarge(packed, "deploy", v2, "--app", "web")
    assert result.returncode == 0, result.stderr
    second = result.stdout.strip()
    rows = {r["id"]: r for r in json.loads(sarge(packed, "list", "--json",
                                                 check=True).stdout)["instances"]}
    assert rows[first]["revision"]["git"] == rows[second]["revision"]["git"] == packed.commit
    assert (rows[first]["revision"]["dirty"], rows[second]["revision"]["dirty"]) == (False, True)
    table = sarge(packed, "list", check=True).stdout.splitlines()
    assert table[0].split()[-1] == "REVISION"
    assert {line.split()[0]: line.split()[-1] for line in table[1:]} == {
        first: packed.commit[:12], second: packed.commit[:12] + "+dirty"}
    status = json.loads(sarge(packed, "status", second, "--json", check=True).stdout)
    assert status["revision"] == rows[second]["revision"]
    assert sarge(packed, "status", check=True).stdout.splitlines()[0].split()[-1] == "REVISION"
    records = json.loads(sarge(packed, "history", "web", "--json", check=True).stdout)
    assert records["records"][-1]["revision"]["git"] == packed.commit
    result = sarge(packed, "config", "web", "--deploy", "COLOUR=blue", timeout=300)
    assert result.returncode == 0, result.stderr  # the same code again: the same revision
    third = result.stdout.strip()
    assert "manifest says" not in result.stderr  # a copy of the instance: not an archive
    third_status = json.loads(sarge(packed, "status", third, "--json", check=True).stdout)
    assert third_status["revision"] == rows[second]["revision"]


@pytest.mark.xdist_group("package_real")
def test_a_tampered_archive_is_refused_and_nothing_changes(packed, tmp_path):
    """One byte of one file changed: the deploy fails at its unpack step naming the file,
    the new instance is gone, the serving version serves on."""
    port = listen_port(10)
    state = json.loads(sarge(packed, "list", "--json", check=True).stdout)["instances"]
    if not state:
        assert sarge(packed, "deploy", packed.archives[0], "--app", "web", "--listen",
                      f"127.0.0.1:{port}").returncode == 0
    current = [r for r in json.loads(sarge(packed, "list", "--json", check=True).stdout)
               ["instances"] if r["role"] == "current"][0]["id"]
    answer = front(port)
    pid = packed.supervisor.process(current + ":web")["pid"]
    before = state_files(packed, under=("etc", "var/apps", "var/envs"))
    tampered = tamper(packed.archives[0], tmp_path / "tampered.tar.gz", "app.py",
                      open(os.path.join(WEBAPP, "app.py"), "rb").read() + b"\n# evil\n")
    result = sarge(packed, "deploy", tampered, "--app", "web")
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert "deploy failed at step 'unpack': app.py has changed (content) since the archive " \
           "was packaged" in result.stderr, result.stderr
    assert f"the current version ({current}) keeps serving" in message, message
    ids = [r["id"] for r in json.loads(sarge(packed, "list", "--json", check=True).stdout)
           ["instances"]]
    assert current in ids and len(ids) == len(set(ids))
    assert sorted(n for n in os.listdir(packed.path) if n.startswith("web-")) == sorted(ids)
    assert front(port) == answer
    assert state_files(packed, under=("etc", "var/apps", "var/envs")) == before
    # the same process, never restarted: RUNNING, or STARTING still when its deploy was the
    # one above, less than startsecs ago (a deploy waits for its health check, not RUNNING)
    assert wait_for_state(packed, current, "running", timeout=10)["pid"] == pid


# -- the same, in the fast tier: a real home with the fakes of tests/fakes.py ---------------

@pytest.mark.fast
def test_the_deploy_of_an_archive_verifies_it_first(tmp_path, source):
    """The fakes' deploy of a packaged archive: its revision in the record (null outside
    git); a tampered copy fails at step 'unpack', its instance removed, the app's state
    and the instances as they were."""
    from sarge.errors import DeployError

    from .conftest import port_base
    from .fakes import Rig

    rig = Rig(tmp_path / "home")
    try:
        package(source, tmp_path / "app.tar.gz")
        first = rig.deployer().deploy(str(tmp_path / "app.tar.gz"), "web",
                                      listen=f"127.0.0.1:{port_base() + 990}")
        assert first.revision["git"] is None and first.revision["packager"].startswith("sarge")
        with tarfile.open(tmp_path / "app.tar.gz") as tar:
            text = tar.extractfile("sarge-manifest.json").read()
        assert first.revision["manifest_sha256"] == hashlib.sha256(text).hexdigest()
        tampered = tamper(tmp_path / "app.tar.gz", tmp_path / "bad.tar.gz", "Procfile",
                          b"web: serve --port $PORT\nworker: evil\n")
        before = [i.id for i in rig.home.instances()], rig.deployer().state("web")
        with pytest.raises(DeployError) as raised:
            rig.deployer().deploy(str(tampered), "web")
        assert raised.value.step == "unpack"
        assert "Procfile has changed (content)" in str(raised.value)
        assert f"the current version ({first.id}) keeps serving" in str(raised.value)
        assert ([i.id for i in rig.home.instances()], rig.deployer().state("web")) == before
        assert [n for n in os.listdir(rig.home.path) if n.startswith("web-")] == [first.id]
    finally:
        rig.close()


@pytest.mark.fast
def test_a_work_tree_git_cannot_read_is_refused(tmp_path, repo, monkeypatch):
    """Without git, or when git refuses the repository (another user's), the files it
    ignores would ship: refused, naming why, nothing written."""
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    code, out, err = run_main(["package", repo, "-o", tmp_path / "a.tar.gz"])
    assert code == 1 and "git cannot read: git is not installed" in err, err
    monkeypatch.undo()
    trusted = subprocess.run(["git", "config", "--get-all", "safe.directory"],
                             capture_output=True, text=True).stdout.split()
    if os.geteuid() != 0 or "*" in trusted:
        return  # only root can give the repository away; "*" trusts every repository
    os.chown(repo, 65534, 65534)  # nobody's: git's safe.directory check refuses it
    code, out, err = run_main(["validate", repo])
    assert code == 1 and "detected dubious ownership" in err, err
    assert not (tmp_path / "a.tar.gz").exists()


@pytest.mark.fast
def test_an_archive_packaged_again_is_the_same_archive(tmp_path):
    """An archive is a source too (read through the safe unpacker, its one folder the
    app): a folder outside git, packed, then its archive packed again, gives the same
    bytes; so does a hand-made tarball of the same files with a folder around them."""
    source = tmp_path / "webapp"  # tests/apps/webapp is in sarge's own work tree
    shutil.copytree(WEBAPP, source)
    first, _ = package(source, tmp_path / "one.tar.gz")
    assert manifest_of(tmp_path / "one.tar.gz")["revision"] is None
    again, _ = package(tmp_path / "one.tar.gz", tmp_path / "two.tar.gz")
    assert first == again
    with tarfile.open(tmp_path / "hand.tgz", "w:gz") as tar:
        tar.add(source, arcname="webapp-1.0")
    made, _ = package(tmp_path / "hand.tgz", tmp_path / "three.tar.gz")
    assert made == first
