"""The command line's own boundary, in process: what a bug in sarge looks like."""

import os
import shutil
import subprocess
import sys
from importlib import metadata

import pytest

from sarge import cli
from sarge.cli import version


class BrokenLifecycle:
    """A lifecycle whose ``start`` has a bug."""

    def start(self, instance_id):
        raise RuntimeError(f"a bug in start({instance_id})\nsecond line")


class BrokenHome:
    """A home whose instances' ``start`` has a bug."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.lifecycle = BrokenLifecycle()


def run_main(argv, capsys, make_home=BrokenHome):
    """``cli.main(argv)``: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv, make_home=make_home)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture
def no_debug(monkeypatch):
    monkeypatch.delenv("SARGE_DEBUG", raising=False)


def test_a_bug_is_one_line_and_its_traceback_goes_to_the_homes_log(home, capsys, no_debug):
    log = os.path.join(home.log_dir, "sarge.log")
    with open(log) as f:
        before = f.read().splitlines()
    code, out, err = run_main([home.path, "start", "web-abcdef"], capsys)
    assert code == 1 and out == ""
    assert err == ("sarge: internal error: RuntimeError: a bug in start(web-abcdef) second "
                   f"line; the traceback is in {log} (a bug in sarge: please report it)\n")
    with open(log) as f:
        lines = f.read().splitlines()
    assert lines[:len(before)] == before  # appended
    lines = lines[len(before):]
    assert lines[0].endswith(" internal-error start")
    assert lines[1] == "  Traceback (most recent call last):"
    assert any(line.strip() == "raise RuntimeError(f\"a bug in start({instance_id})\\nsecond "
               "line\")" for line in lines)
    assert lines[-2:] == ["  RuntimeError: a bug in start(web-abcdef)", "  second line"]


def test_a_bug_with_sarge_debug_prints_the_traceback(home, capsys, monkeypatch):
    monkeypatch.setenv("SARGE_DEBUG", "1")
    code, out, err = run_main([home.path, "start", "web-abcdef"], capsys)
    assert code == 1 and out == ""
    assert err.startswith("Traceback (most recent call last):\n")
    assert "in start\n" in err and "RuntimeError: a bug in start(web-abcdef)\n" in err
    assert err.splitlines()[-1].startswith("sarge: internal error: RuntimeError: ")
    assert "Traceback" in open(os.path.join(home.log_dir, "sarge.log")).read()


def test_a_bug_where_no_log_can_be_written_is_still_one_line(home, tmp_path, capsys,
                                                             no_debug):
    # no home at all
    code, out, err = run_main([str(tmp_path / "nothing"), "start", "web-abcdef"], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("sarge: internal error: RuntimeError: a bug in start(web-abcdef)")
    assert "run it again with SARGE_DEBUG=1 to see the traceback" in err
    assert not (tmp_path / "nothing").exists()
    # a log that cannot be opened for writing (root writes through permissions: a folder)
    log = os.path.join(home.log_dir, "sarge.log")
    if os.path.exists(log):
        os.unlink(log)
    os.mkdir(log)
    code, out, err = run_main([home.path, "start", "web-abcdef"], capsys)
    assert code == 1 and err.count("\n") == 1 and "SARGE_DEBUG=1" in err


def test_errors_sarge_foresaw_are_not_logged_as_bugs(home, capsys, no_debug):
    code, out, err = run_main([home.path, "start", "not an id"], capsys, make_home=None)
    assert code == 2 and err.startswith("sarge: invalid instance id 'not an id'")
    log = os.path.join(home.log_dir, "sarge.log")
    assert not os.path.exists(log) or "internal-error" not in open(log).read()


def test_no_environment_variable_reaches_the_deploys_fault_injection(monkeypatch):
    """``Deployer(fault=...)`` kills sarge at a step: tests build it themselves
    (tests/faults.py); the command line never sets it, whatever the environment."""
    monkeypatch.setenv("SARGE_FAULT_STEP", "unpack")
    context = cli.Context("/nowhere", make_home=lambda path: None)
    assert context.deployer().steps.fault is None


def sarge_command(*args, env=None):
    """``python -m sarge ARGS`` with ``env`` added to this environment."""
    return subprocess.run([sys.executable, "-m", "sarge", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_version_names_sarge_supervisor_and_nginx(tmp_path):
    result = sarge_command("--version")  # no HOME needed
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"sarge {metadata.version('sarge-deploy')}",
                         f"supervisor {metadata.version('supervisor')}"]
    nginx = shutil.which("nginx", path=os.pathsep.join([os.environ["PATH"],
                                                        *version.NGINX_FOLDERS]))
    assert lines[2:] == (["nginx: not found"] if nginx is None else
                         [subprocess.run([nginx, "-v"], capture_output=True, text=True)
                          .stderr.strip() + f" ({nginx})"])
    # an nginx that fails, or hangs, is one line; none at all is said so
    fake = tmp_path / "nginx"
    fake.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    fake.chmod(0o755)
    assert version.nginx_version(str(tmp_path)) == f"nginx: {fake} -v failed (exit status 3)"
    fake.write_text("#!/bin/sh\necho 'nginx version: nginx/9.9.9' >&2\n")
    result = sarge_command("--version", env={"PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert result.stdout.splitlines()[2] == f"nginx version: nginx/9.9.9 ({fake})"
    assert version.nginx_version(str(tmp_path / "empty")) == "nginx: not found"


def test_shell_completion_is_clicks(tmp_path):
    for shell, marker in (("bash", "complete -o nosort -F _sarge_completion sarge"),
                          ("zsh", "#compdef sarge"), ("fish", "complete --no-files")):
        result = sarge_command(env={"_SARGE_COMPLETE": f"{shell}_source"})
        assert result.returncode == 0 and marker in result.stdout, (shell, result.stdout)
    result = sarge_command(env={"_SARGE_COMPLETE": "bash_complete",
                                "COMP_WORDS": "sarge /h de", "COMP_CWORD": "2"})
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["plain,deploy", "plain,destroy"]
    result = sarge_command(env={"_SARGE_COMPLETE": "bash_complete",
                                "COMP_WORDS": "sarge /h deploy --li", "COMP_CWORD": "3"})
    assert result.stdout.splitlines() == ["plain,--listen", "plain,--listen-tls"]
    assert not os.path.exists("/h")  # completing makes no home
