"""What runs a Procfile line: a simple command is exec'd by the shell (the process
supervisord watches is the app's), anything more stays as it was written."""

import os
import subprocess

import pytest

from sarge.commands import exec_form, shell_words

from .conftest import wait_until


@pytest.mark.fast
@pytest.mark.parametrize("command, expected", [
    ("gunicorn app:app --bind 127.0.0.1:$PORT", "exec gunicorn app:app --bind 127.0.0.1:$PORT"),
    ("celery -A tasks worker --concurrency ${N:-2}", "exec celery -A tasks worker "
     "--concurrency ${N:-2}"),
    ("FOO=1 BAR='a b' gunicorn x", "FOO=1 BAR='a b' exec gunicorn x"),
    ('python -c "import os; print(1)"', 'exec python -c "import os; print(1)"'),
    ("python -c 'a && b | c > d $(e) `f`'", "exec python -c 'a && b | c > d $(e) `f`'"),
    ("echo a\\;b", "exec echo a\\;b"),
    ("  spaced \t out  ", "exec spaced out"),
    ("gunicorn app # a comment", "exec gunicorn app"),
    ('"quoted program" x', 'exec "quoted program" x'),
])
def test_a_simple_command_is_execd(command, expected):
    assert exec_form(command) == expected


@pytest.mark.fast
@pytest.mark.parametrize("command", [
    "cd sub && gunicorn app", "a; b", "a || b", "a | b", "a &", "(a)", "{ a; }",
    "a > log", "a < in", "a 2>&1", "a $(b)", 'a "$(b)"', "a `b`", "a\nb",
    "exec gunicorn", "X=1", "", "cd /tmp", "if true; then a; fi", "'unclosed", '"unclosed',
    "umask 077", "trap '' TERM",
])
def test_anything_more_is_left_as_written(command):
    assert exec_form(command) == command


@pytest.mark.fast
def test_words_keep_their_quotes():
    assert shell_words("a 'b c' \"d $E\" f\\ g") == ["a", "'b c'", '"d $E"', "f\\ g"]
    assert shell_words("a && b") is None


@pytest.mark.parametrize("command", [
    "echo $PORT", "FOO=\"a  b\" env", "printf '%s|' \"$PORT\" x\\ y 'z  w'",
])
def test_the_exec_form_means_what_the_line_meant(command):
    """Under the real /bin/sh (dash on Debian): the same output, and the shell is gone
    (the process that printed its pid is the program's)."""
    env = {"PATH": os.environ["PATH"], "PORT": "5000"}

    def run(line):
        return subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True,
                              env=env, check=True).stdout

    assert run(exec_form(command)) == run(command)
    shell = subprocess.Popen(["/bin/sh", "-c", exec_form("FOO=1 sleep 30")], env=env)
    try:
        import psutil

        proc = psutil.Process(shell.pid)
        wait_until(lambda: proc.name() == "sleep", 5, "the shell to exec sleep")
        assert proc.environ()["FOO"] == "1"
    finally:
        shell.kill()
        shell.wait()
