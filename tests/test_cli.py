"""The command line's own boundary, in process: what a bug in sarge looks like."""

import os

import pytest

from sarge import cli


class BrokenHome:
    """A home whose ``start`` has a bug."""

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def start(self, instance_id):
        raise RuntimeError(f"a bug in start({instance_id})\nsecond line")


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
    assert cli._deployer(context).fault is None
