"""Reading logs: the last lines, and following through rotation and truncation."""

import os

from sarge import logs


def test_tail_reads_the_last_lines_of_a_large_file(tmp_path):
    path = tmp_path / "a.log"
    path.write_text("".join(f"line {n}\n" for n in range(5000)))
    assert logs.tail(str(path), 3) == ["line 4997", "line 4998", "line 4999"]
    assert logs.tail(str(path), 0) == []
    assert logs.tail(str(tmp_path / "missing.log"), 5) == []
    path.write_text("no newline at the end")
    assert logs.tail(str(path), 10) == ["no newline at the end"]


def test_control_characters_are_shown_not_obeyed(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"ok\ttab\n\x1b]0;owned\x07\x1b[2Jcleared\rhidden\n")
    assert logs.tail(str(path), 5) == ["ok\ttab", "?]0;owned??[2Jcleared", "hidden"]

    def append():
        with open(path, "ab") as f:
            f.write(b"\x1b[31mred\x1b[0m\n")
    steps, done = [append], []

    def sleep(_seconds):
        steps.pop(0)() if steps else done.append(1)
    chunks = logs.follow(str(path), sleep=sleep, should_stop=lambda: bool(done))
    assert "".join(chunks) == "?[31mred?[0m\n"


class Script:
    """A sleep that, on each call, does the next step of a script to the log file."""

    def __init__(self, steps):
        self.steps = list(steps)

    def sleep(self, _seconds):
        if self.steps:
            self.steps.pop(0)()

    def done(self):
        return not self.steps


def test_follow_survives_rotation_and_truncation(tmp_path):
    path = str(tmp_path / "a.log")
    with open(path, "w") as f:
        f.write("old line\n")

    def append(text, target=path):
        def step():
            with open(target, "a") as f:
                f.write(text)
        return step

    def rotate():
        append("last before rotation\n")()
        os.rename(path, path + ".1")
        append("first after rotation\n")()

    def truncate():
        with open(path, "w") as f:
            f.write("after truncation\n")

    script = Script([append("one\n"), rotate, lambda: None, truncate, lambda: None])
    chunks = list(logs.follow(path, poll=0, sleep=script.sleep, should_stop=script.done))
    assert "".join(chunks) == (
        "one\nlast before rotation\nfirst after rotation\nafter truncation\n")
