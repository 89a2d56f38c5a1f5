"""Least privilege: under a root supervisord, apps and nginx's workers run as the user
sarge.toml names, tested with a throwaway user made for the session (root only)."""

import json
import os
import pty
import pwd
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from sarge import users
from sarge.errors import SettingsError

from .conftest import (
    ENVSERVER,
    as_root,
    deploy,
    edit_settings,
    front,
    get,
    listen_port,
    name_user,
    new,
    owner,
    process_user,
    put_server,
    python_for,
    sarge,
    snapshot,
    wait_for_state,
    wait_until,
)


@as_root
def test_an_instance_runs_as_the_named_user(open_home, throwaway_user):
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    python = python_for(user)
    instance_id = new(h)
    folder = h.instance_dir(instance_id)
    shutil.copy(ENVSERVER, os.path.join(folder, "envserver.py"))
    with open(os.path.join(folder, "server"), "w") as f:
        f.write(f"#!/bin/sh\nexec {python} ./envserver.py\n")
    os.chmod(os.path.join(folder, "server"), 0o755)
    sarge(h, "config", "web", "SECRET=s3cret", check=True)
    sarge(h, "config", "other", "SECRET=theirs", check=True)

    sarge(h, "start", instance_id, check=True)
    instance = h.get(instance_id)
    assert process_user(h, f"{instance_id}:web") == user.name
    shown = json.loads(sarge(h, "status", instance_id, "--json", check=True).stdout)
    assert shown["user"] == user.name
    assert user.name in sarge(h, "status", check=True).stdout
    status, text = get(instance.port, "/env")
    env = json.loads(text)
    assert (env["USER"], env["HOME"], env["SECRET"]) == (user.name, "/nonexistent", "s3cret")
    # what the user owns, and nobody else may enter
    assert owner(h.data_dir("web")) == (user.name, 0o700)
    assert owner(h.runtime_dir(instance_id)) == (user.name, 0o700)
    assert env["XDG_RUNTIME_DIR"] == h.runtime_dir(instance_id)

    # `run` switches too: it can write its data, not its code, nor read any app's config
    def run(*argv):
        return sarge(h, "run", instance_id, *argv)

    assert run("id", "-un").stdout.strip() == user.name
    assert run("sh", "-c", 'echo x > "$SARGE_DATA_DIR/f"').returncode == 0
    assert owner(os.path.join(h.data_dir("web"), "f"))[0] == user.name
    assert run("touch", os.path.join(folder, "x")).returncode != 0
    for app in ("web", "other"):
        result = run("cat", h.app_config_path(app))
        assert result.returncode != 0 and "Permission denied" in result.stderr
    assert run("ls", os.path.join(h.path, "var", "run")).returncode != 0  # the socket's folder


@as_root
def test_a_deploy_runs_release_and_app_as_the_user_and_nginx_workers_as_nobody(
        open_home, throwaway_user, tmp_path):
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    python = python_for(user)
    source = tmp_path / "app"
    source.mkdir()
    (source / "Procfile").write_text(
        'release: id -un > "$SARGE_DATA_DIR/release"; '
        'if touch ./x 2>/dev/null; then echo writable; else echo read-only; fi '
        '>> "$SARGE_DATA_DIR/release"\n'
        f"web: exec {python} -m http.server --bind 127.0.0.1 $PORT\n")
    (source / "secret.txt").write_text("only for the app")
    os.chmod(source / "secret.txt", 0o600)  # readable by its owner only, in the source
    port = listen_port(40)

    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    with open(os.path.join(h.data_dir("web"), "release")) as f:
        assert f.read() == f"{user.name}\nread-only\n"
    assert process_user(h, f"{instance_id}:web") == user.name
    status, text = front(port, "/secret.txt")
    assert (status, text) == (200, "only for the app")  # the app can read its code
    # a body larger than nginx's buffer goes through its temporary folder, which the
    # workers must be able to write
    # (nginx answers 500 and logs the failed open() when it cannot; http.server answers
    # 501, or nginx 502 when http.server closed before the whole body was sent)
    assert front(port, "/", method="POST", body=b"x" * 300_000)[0] in (501, 502)
    with open(os.path.join(h.log_dir, "nginx-error.log")) as f:
        assert "Permission denied" not in f.read()
    assert owner(os.path.join(h.nginx_prefix, "client_body"))[0] == "nobody"
    master = psutil.Process(h.supervisor.process("nginx")["pid"])
    assert master.username() == "root"  # it binds the port, then drops its workers
    workers = master.children()  # not the app's user: it could read the others' traffic
    assert workers and {w.username() for w in workers} == {"nobody"}
    # the code: root's, in the user's group, closed to everyone else
    folder = h.instance_dir(instance_id)
    st = os.stat(folder)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, user.gid, 0o750)
    assert stat.S_IMODE(os.stat(os.path.join(folder, "secret.txt")).st_mode) == 0o640


@as_root
def test_nginx_workers_can_have_their_own_user(open_home, throwaway_user, tmp_path):
    h, user = open_home, throwaway_user
    name_user(h, "root")
    name_user(h, user.name, key="frontend")
    source = tmp_path / "app"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "apps", "webapp"), source)
    port = listen_port(41)
    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert process_user(h, f"{result.stdout.strip()}:web") == "root"
    master = psutil.Process(h.supervisor.process("nginx")["pid"])
    # nginx listens (which the deploy waits for) before it forks its workers and they
    # become the user
    wait_until(lambda: {w.username() for w in master.children()} == {user.name}, 10,
               f"nginx's workers to run as {user.name}")
    assert front(port)[0] == 200


@as_root
def test_root_is_never_implied(open_home, tmp_path):
    """A root-owned home under a root supervisord with no user named runs nothing."""
    h = open_home
    instance_id = new(h)
    put_server(h, instance_id, "#!/bin/sh\nexec sleep 60\n")
    before = snapshot(h.path)
    result = sarge(h, "start", instance_id)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "would run as root" in result.stderr and "[users] default" in result.stderr
    assert h.supervisor.process(f"{instance_id}:web")["statename"] == "STOPPED"
    assert snapshot(h.path) == before

    # supervisord told directly (bin/supervisorctl start) gets the same refusal from the
    # launcher: the process never runs, its log says why
    subprocess.run([os.path.join(h.path, "bin", "supervisorctl"), "start",
                    f"{instance_id}:web"], capture_output=True)
    wait_for_state(h, instance_id, "fatal")
    with open(h.log_path(instance_id)) as f:
        assert "would run as root" in f.read()

    # a deploy is refused before it creates anything
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Procfile").write_text("web: sleep 60\n")
    before = snapshot(h.path)
    result = deploy(h, tmp_path / "app", "--app", "web", "--listen",
                    f"127.0.0.1:{listen_port(42)}")
    assert result.returncode == 1 and "would run as root" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(h.path) == before


@as_root
def test_an_unknown_or_foreign_user_is_refused(open_home, throwaway_user):
    h = open_home
    name_user(h, "root")
    edit_settings(h, {'# myapp = "myapp"': 'web = "no-such-user-here"'})
    instance_id = new(h)
    put_server(h, instance_id, "#!/bin/sh\nexec sleep 60\n")
    result = sarge(h, "start", instance_id)
    assert result.returncode == 1 and "there is no user 'no-such-user-here'" in result.stderr

    # a data folder that another user owns is not taken over
    edit_settings(h, {'web = "no-such-user-here"': f'web = "{throwaway_user.name}"'})
    os.makedirs(h.data_dir("web"), exist_ok=True)
    os.chown(h.data_dir("web"), 65534, 65534)  # nobody's
    result = sarge(h, "run", instance_id, "true")
    assert result.returncode == 1 and "chown -R" in result.stderr
    assert os.stat(h.data_dir("web")).st_uid == 65534


def test_without_root_nothing_is_switched(tmp_path):
    me = pwd.getpwuid(os.geteuid()).pw_name
    path, settings = str(tmp_path), str(tmp_path / "sarge.toml")
    assert users.resolve("", "the app web", path, settings, euid=4242) is None
    assert users.resolve("65534", "the app web", path, settings, euid=65534) is None
    with pytest.raises(SettingsError, match="cannot switch users"):
        users.resolve(me, "the app web", path, settings, euid=4242)
    # as root: a user must be named; root itself only by name
    with pytest.raises(SettingsError, match="would run as root"):
        users.resolve("", "the app web", path, settings, euid=0)
    assert users.resolve("root", "the app web", path, settings, euid=0).uid == 0
    with pytest.raises(SettingsError, match="no user 'nobody-at-all'"):
        users.resolve("nobody-at-all", "the app web", path, settings, euid=0)


def in_a_terminal(script, then=b"", after=b"DONE", slow=False, delay=0.0):
    """Run a root shell on a new terminal (the operator's); ``delay`` seconds after it
    prints ``after``, type ``then`` into it. Returns its output and exit status.
    ``slow``: read as a slow terminal would (an ssh link), so that output piles up."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover
        # An operator's shell starts with every signal at its default and none blocked;
        # this test worker may not be so (what it ignores or blocks, an exec keeps: ^C
        # would then never reach the command, as seen in the full suite on one worker).
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP,
                    signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.execv("/bin/sh", ["/bin/sh", "-c", script])
    out, status, seen = b"", None, None
    deadline = time.monotonic() + 60
    try:
        while status is None:
            assert time.monotonic() < deadline, f"hangs: {out[-300:]!r}"
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    pass
                if slow:
                    time.sleep(0.02)
            if then and after in out:
                seen = seen or time.monotonic()
                if time.monotonic() - seen >= delay:
                    os.write(fd, then)
                    then = b""
            done, code = os.waitpid(pid, os.WNOHANG)
            status = os.waitstatus_to_exitcode(code) if done else None
    finally:
        os.close(fd)
    return out.decode(errors="replace"), status



@as_root
def test_the_app_user_gets_neither_roots_environment_nor_its_terminal(open_home,
                                                                      throwaway_user):
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    instance_id = new(h)
    env = dict(os.environ, ROOT_TOKEN="s3cret", LC_ALL="C.UTF-8")
    result = subprocess.run([os.path.join(h.path, "bin", "sarge"), "run", instance_id, "env"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert "ROOT_TOKEN" not in seen and seen["LC_ALL"] == "C.UTF-8"
    assert seen["USER"] == user.name and seen["SARGE_INSTANCE"] == instance_id
    # a folder `new` made private to root is shared before the command runs in it
    assert sarge(h, "run", instance_id, "ls", "-a").returncode == 0

    # In root's terminal, the command runs on a terminal of its own: what it leaves
    # behind cannot read what root types next, nor push keystrokes into root's shell.
    run = shlex.join([os.path.join(h.path, "bin", "sarge"), "run", instance_id])
    out, status = in_a_terminal(f"{run} sh -c 'id -un; exit 3'; echo status=$?")
    assert user.name in out and "status=3" in out  # output and exit status come through
    steal = """sh -c 'exec 3<&0; (sleep 1; head -c 5 <&3 > "$SARGE_DATA_DIR/stolen") &'"""
    out, status = in_a_terminal(f"{run} {steal}; echo DONE; sleep 3", then=b"hello\n")
    assert "DONE" in out
    stolen = os.path.join(h.data_dir("web"), "stolen")
    assert not os.path.exists(stolen) or "hello" not in open(stolen).read()
    # ... nor one that ignores SIGHUP and keeps printing, so that the relay would go on
    # (and carry root's next keystrokes to it) long after the command ended
    os.unlink(stolen) if os.path.exists(stolen) else None
    steal = ("""sh -c '(trap "" HUP; (while printf "\\0\\0\\0\\0"; do :; done) & """
             """head -c 5 > "$SARGE_DATA_DIR/stolen") & sleep 0.3'""")
    try:
        out, status = in_a_terminal(f"{run} {steal}; echo DONE; sleep 3", then=b"hello\n",
                                    slow=True)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", str(user.uid)])  # what it left behind
    assert "DONE" in out
    assert not os.path.exists(stolen) or "hello" not in open(stolen).read()


@as_root
def test_a_user_who_could_change_what_root_runs_is_refused(open_home, throwaway_user):
    """The home, a folder or file root reads or runs, a folder above the home."""
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    instance_id = new(h)
    put_server(h, instance_id, "#!/bin/sh\nexec sleep 60\n")
    for path in (os.path.join(h.path, "etc", "supervisor.d"), h.path,
                 os.path.join(h.path, "bin", "supervisord"),  # a file root runs at boot
                 os.path.join(h.path, "var", "data"),  # where root gives it folders
                 os.path.dirname(h.path)):  # it could move the home away

        st = os.stat(path)
        os.chown(path, user.uid, -1)
        try:
            result = sarge(h, "start", instance_id)
        finally:
            os.chown(path, st.st_uid, -1)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "root" in result.stderr and path in result.stderr
        assert h.supervisor.process(f"{instance_id}:web")["statename"] == "STOPPED"

    # code the user could change is not shared with it (root would chmod through links)
    os.chown(h.instance_dir(instance_id), user.uid, -1)
    result = sarge(h, "start", instance_id)
    assert result.returncode == 1 and "will not share it" in result.stderr
    os.chown(h.instance_dir(instance_id), 0, -1)
    sarge(h, "start", instance_id, check=True)
    assert process_user(h, f"{instance_id}:web") == user.name


@as_root
def test_app_users_sharing_a_group_are_refused(open_home, throwaway_user):
    h, user = open_home, throwaway_user
    other = f"{user.name}b"
    subprocess.run(["useradd", "--system", "--no-create-home", "--gid", str(user.gid),
                    "--shell", "/usr/sbin/nologin", other], check=True, capture_output=True)
    try:
        name_user(h, user.name)
        edit_settings(h, {'# myapp = "myapp"': f'shop = "{other}"'})
        instance_id = new(h)
        put_server(h, instance_id, "#!/bin/sh\nexec sleep 60\n")
        result = sarge(h, "start", instance_id)
        assert result.returncode == 1 and "share their primary group" in result.stderr
    finally:
        subprocess.run(["userdel", other], capture_output=True)


@as_root
def test_the_terminal_relay_keeps_redirections_and_signals(open_home, throwaway_user,
                                                          tmp_path):
    """Only the streams that are root's terminal go through the command's own: a
    redirected one reaches it unchanged; a big output, piped input and SIGTERM neither
    hang the relay nor leave root's terminal raw."""
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    instance_id = new(h)
    run = shlex.join([os.path.join(h.path, "bin", "sarge"), "run", instance_id])
    out_file = tmp_path / "out"
    out, status = in_a_terminal(
        f"{run} sh -c 'echo line1; echo oops >&2; echo line2' > {out_file}; echo rc=$?")
    assert out_file.read_bytes() == b"line1\nline2\n" and "oops" in out and "rc=0" in out
    out, status = in_a_terminal(f"printf abc | {run} wc -c; echo rc=$?")  # no newline
    assert "3" in out.split("rc=")[0] and "rc=0" in out
    out, status = in_a_terminal(
        f"{run} sh -c 'head -c 1000000 /dev/zero | tr \"\\0\" x; echo; echo END'")
    assert out.count("x") == 1000000 and "END" in out
    out, status = in_a_terminal(
        f"before=$(stty -g); timeout --foreground --preserve-status -s TERM 2 {run} "
        f'sleep 30; echo rc=$?; [ "$(stty -g)" = "$before" ] && echo SANE')
    assert "rc=143" in out and "SANE" in out
    # a prompt on /dev/tty works with stdin and stdout redirected (a password, say)
    out, status = in_a_terminal(
        f"{run} sh -c 'echo ASK >/dev/tty; read x </dev/tty; echo got=$x' "
        f"</dev/null >{out_file}; cat {out_file}", then=b"abc\r", after=b"ASK")
    assert "got=abc" in out
    # a command that lets go of its terminal (nohup-like) but runs on: root's terminal is
    # given back as it was, and ^C still reaches the command
    start = time.monotonic()
    out, status = in_a_terminal(
        f"trap 'echo caught' INT; {run} sh -c 'echo READY; "
        f"exec sleep 30 </dev/null >/dev/null 2>&1'; echo rc=$?", then=b"\x03", after=b"READY",
        delay=1.0)
    assert "rc=130" in out and time.monotonic() - start < 20
    # in the background (job control on), it runs on without touching the terminal
    out, status = in_a_terminal(
        f"set -m; {run} sh -c 'echo done-bg' </dev/null >{out_file} & wait $!; echo rc=$?")
    assert "rc=0" in out and out_file.read_text() == "done-bg\n"


@as_root
def test_a_home_reached_through_a_link_is_checked_where_it_is(open_home, throwaway_user,
                                                              tmp_path):
    h, user = open_home, throwaway_user
    theirs = tempfile.mkdtemp(prefix="sarge-v")  # a folder the app's user owns...
    try:
        os.chown(theirs, user.uid, user.gid)
        os.rename(h.path, os.path.join(theirs, "home"))  # ...holds the real home
        link = tmp_path / "home"
        os.symlink(os.path.join(theirs, "home"), link)  # reached from root's folders
        with pytest.raises(SettingsError, match="could move it away"):
            users.check_home(str(link), user)
    finally:
        os.rename(os.path.join(theirs, "home"), h.path)
        shutil.rmtree(theirs, ignore_errors=True)


@as_root
def test_an_app_user_in_nobodys_group_is_refused(open_home):
    """adduser --system NAME, without --group, puts NAME in nogroup: nginx's workers
    (nobody) would then read the app's code through that group."""
    h = open_home
    name = f"sarge-n{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--gid", "nogroup",
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        name_user(h, name)
        instance_id = new(h)
        put_server(h, instance_id, "#!/bin/sh\nexec sleep 60\n")
        result = sarge(h, "start", instance_id)
        assert result.returncode == 1 and "share their primary group" in result.stderr
        assert "nobody" in result.stderr
    finally:
        subprocess.run(["userdel", name], capture_output=True)


GIVE_UP_THE_TERMINAL = r"""
import errno, fcntl, os, sys, termios
from sarge import privileges, users
from sarge.errors import SettingsError

fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty on stdin: this session's terminal now

def refuse(fd, request, *args):
    if request == termios.TIOCNOTTY:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))
    return fcntl.ioctl(fd, request, *args)

def has_terminal():
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        return False
    return True

switch = sys.argv[1] == "become"
nobody = users.RunAs("nobody", 65534, 65534, "/nonexistent")
for ioctl in (refuse, None):
    try:
        privileges.become(nobody, ioctl=ioctl) if switch else privileges.detach_terminal(ioctl)
    except SettingsError as exc:
        print(f"refused uid={os.getuid()} tty={has_terminal()}: {exc}")
    else:
        print(f"went on uid={os.getuid()} tty={has_terminal()}")
"""


def on_a_terminal(*args):
    """Run GIVE_UP_THE_TERMINAL in a process whose controlling terminal is a pty."""
    master, slave = pty.openpty()
    try:
        return subprocess.run([sys.executable, "-I", "-c", GIVE_UP_THE_TERMINAL, *args],
                              stdin=slave, capture_output=True, text=True, timeout=60,
                              start_new_session=True)
    finally:
        os.close(slave)
        os.close(master)


def test_a_terminal_that_cannot_be_given_up_refuses_the_switch():
    result = on_a_terminal("detach")
    assert result.returncode == 0, result.stderr
    refused, went_on = result.stdout.splitlines()
    assert refused.startswith(f"refused uid={os.getuid()} tty=True: cannot give up root's "
                              "terminal before switching users (Operation not permitted): "
                              "the command was not run")
    assert went_on == f"went on uid={os.getuid()} tty=False"


@as_root
def test_become_switches_only_once_the_terminal_is_given_up():
    result = on_a_terminal("become")
    assert result.returncode == 0, result.stderr
    refused, went_on = result.stdout.splitlines()
    assert refused.startswith("refused uid=0 tty=True: cannot give up root's terminal")
    assert went_on == "went on uid=65534 tty=False"
