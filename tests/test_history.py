"""The deploy history: the journal's chain on real files, what each change records (the
fast tier's fakes), and `sarge HOME history` on a real home."""

import json
import os
import subprocess

import pytest

from sarge import journal
from sarge.deploy.journaled import journal_of
from sarge.errors import DeployError, InstanceNotFound, UsageError

from .conftest import deploy as real_deploy
from .conftest import listen_port, sarge
from .fakes import Rig
from .test_deploy_fast import LISTEN, deploy

fast = pytest.mark.fast


@pytest.fixture
def rig(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("f") / "home")
    yield rig
    rig.close()


def book(tmp_path):
    times = iter(f"2026-12-02T00:00:{s:02d}Z" for s in range(60))
    return journal.Journal(str(tmp_path / "history.jsonl"), str(tmp_path / "lock"),
                           lambda: next(times))


@fast
def test_the_chain_finds_a_record_changed_removed_or_added(tmp_path):
    j = book(tmp_path)
    for n in range(4):
        j.append({"action": "deploy", "app": "web", "n": n})
    assert [r["seq"] for r in j.records()] == [1, 2, 3, 4]
    assert j.records()[0]["prev"] == journal.GENESIS and j.verify() == []
    lines = open(j.path).read().splitlines()

    edited = lines[:]
    edited[1] = edited[1].replace('"n":1', '"n":7')
    open(j.path, "w").write("\n".join(edited) + "\n")
    assert j.verify() == ["line 3 (seq 3): the line before it was changed, removed or put "
                          "there by hand"]
    open(j.path, "w").write("\n".join(lines[:1] + lines[2:]) + "\n")  # one removed
    problems = j.verify()
    assert len(problems) == 2 and "seq 3 follows 1" in problems[1]
    open(j.path, "w").write("\n".join(lines + ["{not json"]) + "\n")
    assert j.verify() == ["line 5: not a JSON record"]
    assert j.append({"action": "route", "app": "web"})["seq"] == 6  # a damaged line counts
    open(j.path, "w").write("\n".join(lines) + "\n")
    assert j.verify() == []


@fast
def test_a_torn_last_line_stays_alone(tmp_path):
    j = book(tmp_path)
    j.append({"n": 1})
    with open(j.path, "a") as f:
        f.write('{"cut short')  # a write a full disk cut
    j.append({"n": 2})
    lines = open(j.path).read().splitlines()
    assert lines[1] == '{"cut short' and json.loads(lines[2])["n"] == 2
    assert [r["n"] for r in j.records()] == [1, 2]


@fast
def test_the_last_line_is_read_from_the_end(tmp_path):
    j = book(tmp_path)
    j.append({"big": "x" * 50_000})
    second = j.append({"small": 1})
    assert second["seq"] == 2 and j.verify() == []


@fast
def test_who_and_what_a_source_is(tmp_path):
    assert journal.who({"SSH_CLIENT": "192.0.2.7 50000 22", "SUDO_USER": "ann"}, uid=0) == {
        "user": "root", "sudo_user": "ann", "client": "192.0.2.7"}
    assert journal.who({}, uid=0)["client"] is None
    archive = tmp_path / "a.tgz"
    archive.write_bytes(b"data")
    assert journal.source_identity(str(archive)) == {
        "sha256": "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"}
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "app.py").write_text("print(1)\n")
    first = journal.source_identity(str(folder))
    assert first["git"] is None and len(first["tree_sha256"]) == 64
    (folder / "app.py").write_text("print(2)\n")
    assert journal.source_identity(str(folder))["tree_sha256"] != first["tree_sha256"]
    os.symlink("/etc/passwd", folder / "link")  # a link is digested as a link, not followed
    assert journal.source_identity(str(folder))["tree_sha256"]
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert journal.git_revision(str(folder)) == head
    subprocess.run(["git", "-C", str(folder), "pack-refs", "--all"], check=True)
    assert journal.git_revision(str(folder)) == head  # from packed-refs


@fast
def test_each_change_is_recorded_with_its_outcome(rig, source):
    first = deploy(rig, source, listen=LISTEN)
    second = deploy(rig, source, version=2)
    rig.deployer().rollback("web")
    rig.deployer().set_variables("web", ["A=1", "B=secret"], ["C"])
    with pytest.raises(InstanceNotFound):
        rig.deployer().route("web", "web-abcdef")  # bad input: no record
    (source / "Procfile").write_text("nothing here\n")
    with pytest.raises(DeployError):
        deploy(rig, source, version=3)
    with pytest.raises(UsageError):
        rig.deployer().deploy(str(source), "web", listen="not an address")
    records = journal_of(rig.home).records()
    summary = [(r["action"], r["outcome"], r.get("step"), r["from"], r["to"]) for r in records]
    assert summary[:4] == [("deploy", "ok", None, None, first.id),
                           ("deploy", "ok", None, first.id, second.id),
                           ("rollback", "ok", None, second.id, first.id),
                           ("config", "ok", None, first.id, first.id)]
    assert summary[-1] == ("deploy", "failed", "environment", first.id, first.id)
    assert len(records) == 5  # the route to no instance and the bad address: bad input
    deployed = records[0]
    assert deployed["source"] == str(source)
    assert len(deployed["source_identity"]["tree_sha256"]) == 64
    assert deployed["procfile"] == {"web": "serve --port $PORT"}
    assert [name for name, _ in deployed["steps"]][:2] == ["new instance", "unpack"]
    assert deployed["user"] and deployed["time"].endswith("Z")
    assert records[3]["keys"] == ["A", "B", "C"] and "secret" not in json.dumps(records)
    assert "Procfile" in records[-1]["reason"]
    assert journal_of(rig.home).verify() == []


def test_the_history_command_on_a_real_home(running, webapp):
    port = listen_port()
    first = real_deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}",
                        check=True).stdout.strip()
    (webapp / "requirements.txt").write_text("no-such-package-anywhere==0\n")
    assert real_deploy(running, webapp, "--app", "web").returncode == 1
    # refused before any step (nothing to roll back to): no record, as it changed nothing
    assert sarge(running, "rollback", "web").returncode == 1
    (webapp / "requirements.txt").write_text("gunicorn\n")
    second = real_deploy(running, webapp, "--app", "web", check=True).stdout.strip()
    assert sarge(running, "rollback", "web").returncode == 0
    table = sarge(running, "history", check=True).stdout.splitlines()
    assert table[0].split() == ["SEQ", "TIME", "APP", "ACTION", "FROM", "TO", "OUTCOME",
                                "SECONDS", "USER"]
    rows = [line.split() for line in table[1:]]
    assert [(r[0], r[3], r[4], r[5]) for r in rows] == [
        ("1", "deploy", "-", first), ("2", "deploy", first, first),
        ("3", "deploy", first, second), ("4", "rollback", second, first)]
    assert "failed at environment" in table[2]
    records = json.loads(sarge(running, "history", "web", "--json", check=True).stdout)
    assert [r["outcome"] for r in records["records"]] == ["ok", "failed", "ok", "ok"]
    assert records["records"][1]["details"][0].startswith("Last lines of its")
    one = json.loads(sarge(running, "history", "--show", "1", check=True).stdout)
    assert one["to"] == first and one["source"] == str(webapp)
    assert sarge(running, "history", "other", check=True).stdout.splitlines()[1:] == []
    missing = sarge(running, "history", "--show", "9")
    assert missing.returncode == 2 and missing.stderr == "sarge: no record 9 in the history\n"

    ok = sarge(running, "history", "--verify")
    assert ok.returncode == 0 and "4 record(s), each as sarge wrote it" in ok.stderr
    text = open(running.history_path).read()
    open(running.history_path, "w").write(text.replace('"outcome":"failed"',
                                                       '"outcome":"ok"'))
    bad = sarge(running, "history", "--verify")
    assert bad.returncode == 1 and "line 3 (seq 3)" in bad.stdout, bad
    assert "is not as sarge wrote it" in bad.stderr
