"""Nobody takes over an instance's port: before traffic moves, sarge proves that what
answers on the port is the instance's own process tree (and nginx's, on the front-end)."""

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading

import pytest

from sarge import sockdiag
from sarge.errors import PortTaken, UsageError
from sarge.ports import (
    PROC_TABLES,
    all_listeners,
    can_bind,
    check_holder,
    listeners,
    socket_inodes,
    still_listening,
)

from .conftest import (
    HERE,
    as_root,
    deploy,
    front,
    kill_home,
    listen_port,
    make_home,
    name_user,
    python_for,
    sarge,
    snapshot,
    start_supervisord,
    wait_until,
)

STUBBORN = os.path.join(HERE, "apps", "stubborn.py")

#: Names that never resolve (RFC 6761), and addresses no machine has (RFC 5737, RFC 3849).
UNRESOLVED = "no-such-host.invalid"
FOREIGN = ("192.0.2.1", "2001:db8::1")


def test_a_listen_address_is_free_taken_unresolved_or_not_this_machines():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not can_bind("127.0.0.1", port)
        assert not can_bind("localhost", port)  # a name: each address it resolves to
        assert not can_bind("0.0.0.0", port)
    assert can_bind("127.0.0.1", port) and can_bind("localhost", port)
    with pytest.raises(UsageError, match=rf"^--listen {UNRESOLVED}:{port}: {UNRESOLVED} "
                                         "does not resolve"):
        can_bind(UNRESOLVED, port)
    with pytest.raises(UsageError, match=rf"^--listen 192.0.2.1:{port}: 192.0.2.1 is not an "
                                         "address of this machine"):
        can_bind("192.0.2.1", port)
    with pytest.raises(UsageError, match=rf"^--listen \[2001:db8::1\]:{port}: 2001:db8::1 is "
                                         "not an address of this machine"):
        can_bind("2001:db8::1", port)


def test_deploy_says_why_it_cannot_listen_there(home, webapp):
    """Before any instance is made (supervisord need not even run): a host that does not
    resolve or is not this machine's is a usage error (2); an address something else
    listens on refuses the deploy (1). Neither is "something already listens there"
    unless something does."""
    before = snapshot(home.path)
    for host in (UNRESOLVED, *FOREIGN):
        listen = f"[{host}]:{listen_port()}" if ":" in host else f"{host}:{listen_port()}"
        result = deploy(home, webapp, "--app", "web", "--listen", listen)
        assert result.returncode == 2, result.stderr
        reason = "does not resolve" if host == UNRESOLVED else "is not an address of this"
        assert result.stderr.startswith(f"sarge: --listen {listen}: {host} {reason}")
        assert result.stderr.count("\n") == 1 and "already listens" not in result.stderr
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", listen_port()))
        s.listen()
        result = deploy(home, webapp, "--app", "web", "--listen", f"127.0.0.1:{listen_port()}")
    assert result.returncode == 1
    assert result.stderr == (f"sarge: --listen 127.0.0.1:{listen_port()}: something on this "
                             "machine already listens there\n")
    assert snapshot(home.path) == before


def test_the_front_end_waits_out_only_a_holder_that_may_be_an_nginx_of_before():
    """nginx's start waits while an nginx master of this user holds its port (the
    launcher ends it); another user's process, or another program, fails it at once."""
    from sarge.frontend.own import _maybe_old_master

    me = os.geteuid()
    assert _maybe_old_master(PortTaken("held", uid=me, program="nginx"))
    assert _maybe_old_master(PortTaken("held"))  # not seen: maybe
    assert not _maybe_old_master(PortTaken("held", uid=me, program="python3"))
    assert not _maybe_old_master(PortTaken("held", uid=me + 1, program="nginx"))


def test_the_kernel_tables_name_every_listener():
    with socket.socket() as s4, socket.socket(socket.AF_INET6) as s6:
        s4.bind(("127.0.0.1", 0))
        s4.listen()
        port = s4.getsockname()[1]
        found = listeners(port)
        assert [(li.address, li.uid) for li in found] == [("127.0.0.1", os.getuid())]
        assert found[0].inode in socket_inodes([os.getpid()])
        check_holder(port, {os.getpid()}, "this test")  # ours: no complaint
        with pytest.raises(PortTaken, match=rf"port {port} is held by pid {os.getpid()} "
                                            r"\(user \S+, program python") as taken:
            check_holder(port, set(), "web-AAAAAA")
        assert (taken.value.uid, taken.value.program[:6]) == (os.getuid(), "python")
        s6.bind(("::", 0))
        s6.listen()
        assert [li.address for li in listeners(s6.getsockname()[1])] == ["::"]
    with pytest.raises(PortTaken, match="nothing listens"):
        check_holder(port, {os.getpid()}, "web-AAAAAA")


def test_netlink_and_the_proc_tables_agree_and_proc_is_read_when_netlink_fails():
    """The sockets netlink names (sock_diag, listening alone) are those /proc/net/tcp and
    tcp6 name, IPv6 and an IPv4-mapped address included; when netlink cannot be asked
    (its error is an OSError), /proc is read."""
    with socket.socket() as s4, socket.socket(socket.AF_INET6) as s6, \
            socket.socket(socket.AF_INET6) as mapped, socket.socket() as connected:
        for s, address in ((s4, "127.0.0.1"), (s6, "::1"), (mapped, "::ffff:127.0.0.1")):
            s.bind((address, 0))
            s.listen()
        connected.connect(s4.getsockname())  # a connection: not a listener
        ports = {s.getsockname()[1] for s in (s4, s6, mapped)}

        def ours(found):
            return sorted((li.address, li.port, li.uid, li.inode)
                          for li in found if li.port in ports)

        netlink = ours(all_listeners())
        assert [(a, uid) for a, _, uid, _ in netlink] == sorted(
            [("127.0.0.1", os.getuid()), ("::1", os.getuid()), ("127.0.0.1", os.getuid())])
        assert netlink == ours(all_listeners(PROC_TABLES))

        def failing():
            return sockdiag.listening(families=(250,))  # no such family: EINVAL

        with pytest.raises(OSError, match="sock_diag: Invalid argument"):
            failing()
        assert ours(all_listeners(ask=failing)) == netlink
        assert still_listening(os.getpid())
    assert not still_listening(os.getpid())  # closed
    assert not still_listening(2 ** 22 + 1)  # no such process


def stubborn_app(path, text, python=sys.executable):
    path.mkdir()
    shutil.copy(STUBBORN, path / "stubborn.py")
    (path / "Procfile").write_text(f"web: exec {python} stubborn.py {text}\n")
    return path


class Squatter:
    """A process of another user that binds a port and answers every request."""

    def __init__(self, port, user, text="squatter"):
        self.folder = tempfile.mkdtemp(prefix="sarge-squat")  # where the user can read it
        os.chmod(self.folder, 0o755)
        script = shutil.copy(STUBBORN, self.folder)
        argv = ["runuser", "-u", user.name, "--", python_for(user), script, text]
        self.proc = subprocess.Popen(argv, env=dict(os.environ, PORT=str(port)))
        wait_until(lambda: any(li.address == "127.0.0.1" for li in listeners(port)), 10,
                   f"the squatter to bind {port}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def wait_for_new_port(h, known, timeout=30):
    folder = os.path.join(h.path, "var", "ports")
    new = wait_until(lambda: set(os.listdir(folder)) - known, timeout, "a port given out",
                     interval=0.02)
    return int(new.pop())


@as_root
def test_a_squatter_on_a_new_instances_port_fails_the_deploy(open_home, throwaway_user,
                                                              second_user, tmp_path):
    h, user, attacker = open_home, throwaway_user, second_user
    name_user(h, user.name)
    python = python_for(user)
    port = listen_port(70)
    assert deploy(h, stubborn_app(tmp_path / "v1", "v1", python), "--app", "web",
                  "--listen", f"127.0.0.1:{port}").returncode == 0
    assert front(port) == (200, "v1")
    assert oct(os.stat(os.path.join(h.path, "var", "ports")).st_mode & 0o777) == "0o700"

    # the release step gives the attacker time to bind the new instance's port
    source = stubborn_app(tmp_path / "v2", "v2", python)
    with open(source / "Procfile", "a") as f:
        f.write("release: sleep 2\n")
    known = set(os.listdir(os.path.join(h.path, "var", "ports")))
    squatters = []
    watcher = threading.Thread(target=lambda: squatters.append(
        Squatter(wait_for_new_port(h, known), attacker)))
    watcher.start()
    try:
        result = deploy(h, source, "--app", "web")
        watcher.join()
        assert result.returncode == 1
        assert "at step 'health check'" in result.stderr
        assert f"user {attacker.name}, program python" in result.stderr
        assert front(port) == (200, "v1")  # the old version keeps serving
        assert [i.id for i in h.instances()] == [h.instances()[0].id]
    finally:
        watcher.join()
        for squatter in squatters:
            squatter.stop()


@as_root
def test_a_squatter_on_a_rollback_targets_port_fails_the_rollback(open_home, throwaway_user,
                                                                   second_user, tmp_path):
    h, user, attacker = open_home, throwaway_user, second_user
    name_user(h, user.name)
    python = python_for(user)
    port = listen_port(71)
    v1 = deploy(h, stubborn_app(tmp_path / "v1", "v1", python), "--app", "web",
                "--listen", f"127.0.0.1:{port}").stdout.strip()
    assert deploy(h, stubborn_app(tmp_path / "v2", "v2", python), "--app", "web"
                  ).returncode == 0
    squatter = Squatter(h.get(v1).port, attacker)
    try:
        result = sarge(h, "rollback", "web")
        assert result.returncode == 1
        assert f"user {attacker.name}" in result.stderr and "Traceback" not in result.stderr
        assert "keeps serving" in result.stderr
        assert front(port) == (200, "v2")
        assert h.supervisor.process(f"{v1}:web")["statename"] == "STOPPED"
    finally:
        squatter.stop()


def test_a_web_process_restarted_after_its_check_is_no_squatter(running, webapp):
    """The web process dies after it answered and supervisord starts it again on its port
    before sarge looks at who holds it: the deploy fails for that, not for "another
    program" (a loaded machine let a crash fall between the two)."""
    import signal

    import psutil

    from sarge.deploy import Deployer
    from sarge.errors import DeployError

    port = listen_port()
    first = deploy(running, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}",
                   check=True).stdout.strip()
    (webapp / "VERSION").write_text("2")
    restarted = []

    def check_after_a_restart(port, pids, owner):
        name = f"{owner}:web"
        old = running.supervisor.process(name)["pid"]
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: (not any(psutil.pid_exists(pid) for pid in pids)  # its workers
                            and running.supervisor.process(name)["pid"] not in (0, old)
                            and listeners(port)), 20, "the web process to be back")
        restarted.append(old)
        check_holder(port, pids, owner)

    deployer = Deployer(running, check_holder=check_after_a_restart)
    with pytest.raises(DeployError) as caught:
        deployer.deploy(str(webapp), "web")
    assert restarted
    message = str(caught.value)
    assert message.startswith("deploy failed at step 'health check': its web process exited "
                              "after it answered the health check"), message
    assert "another program" not in message
    assert [i.id for i in running.instances()] == [first]
    assert front(port)[1].startswith("version 1")  # the old version keeps serving


def test_two_homes_with_one_port_range_never_serve_each_other(tmp_path_factory, tmp_path):
    """Another home's app takes the port of a stopped rollback target: the rollback fails
    instead of sending the first home's traffic to the second home's app."""
    a = make_home(tmp_path_factory.mktemp("a") / "home")
    b = make_home(tmp_path_factory.mktemp("b") / "home")  # the same [ports] range
    start_supervisord(a)
    start_supervisord(b)
    try:
        port_a, port_b = listen_port(72), listen_port(73)
        v1 = deploy(a, stubborn_app(tmp_path / "a1", "a-v1"), "--app", "shop",
                    "--listen", f"127.0.0.1:{port_a}").stdout.strip()
        assert deploy(a, stubborn_app(tmp_path / "a2", "a-v2"), "--app", "shop"
                      ).returncode == 0
        result = deploy(b, stubborn_app(tmp_path / "b1", "b-v1"), "--app", "blog",
                        "--listen", f"127.0.0.1:{port_b}")
        assert result.returncode == 0, result.stderr
        blog = result.stdout.strip()
        assert b.get(blog).port == a.get(v1).port  # free, so given again

        result = sarge(a, "rollback", "shop")
        holder = b.supervisor.process(f"{blog}:web")["pid"]  # the other home's app, named
        assert result.returncode == 1, result.stderr
        assert f"port {b.get(blog).port} is held by pid {holder} " in result.stderr
        assert f"rollback of shop to {v1} failed at step 'health check'" in result.stderr
        assert front(port_a) == (200, "a-v2") and front(port_b) == (200, "b-v1")
    finally:
        kill_home(a)
        kill_home(b)


@as_root
def test_a_squatter_on_the_front_end_port_is_named(open_home, throwaway_user, second_user,
                                                   tmp_path):
    """nginx down, a local user binds its port: the next switch says who holds it."""
    h, user, attacker = open_home, throwaway_user, second_user
    name_user(h, user.name)
    python = python_for(user)
    port = listen_port(74)
    assert deploy(h, stubborn_app(tmp_path / "v1", "v1", python), "--app", "web",
                  "--listen", f"127.0.0.1:{port}").returncode == 0
    h.supervisor.stop("nginx")
    squatter = Squatter(port, attacker)
    try:
        result = deploy(h, stubborn_app(tmp_path / "v2", "v2", python), "--app", "web")
        assert result.returncode == 1 and "at step 'switch'" in result.stderr
        assert f"port {port} is held by" in result.stderr and attacker.name in result.stderr
    finally:
        squatter.stop()


SOCKET_PROCFILE = ("web: gunicorn app:app --bind unix:$SARGE_SOCKET --workers 2 "
                   "--graceful-timeout 10\n")


def test_an_app_on_a_unix_socket_is_served_and_rolled(running, webapp):
    """``--bind unix:$SARGE_SOCKET``: no TCP port to take over at all."""
    h = running
    (webapp / "Procfile").write_text(SOCKET_PROCFILE)
    port = listen_port(75)
    result = deploy(h, webapp, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    first = h.get(result.stdout.strip())
    assert first.unix_socket and f"-> unix:{h.app_socket(first.id)}" in result.stderr
    assert front(port)[1].startswith("version 1")
    assert listeners(first.port) == []  # nothing on its TCP port
    status, text = front(port, "/env")
    assert json.loads(text)["SARGE_SOCKET"] == h.app_socket(first.id)

    # the switches of an app on a socket move a link, and reload nothing: nginx's workers
    # (and the keep-alive connections they hold) are the same before and after
    assert os.readlink(h.front_link("web")) == h.app_socket(first.id)
    workers = nginx_workers(h)
    (webapp / "VERSION").write_text("2")
    result = deploy(h, webapp, "--app", "web")
    assert result.returncode == 0, result.stderr
    assert front(port)[1].startswith("version 2")
    assert os.readlink(h.front_link("web")) == h.app_socket(result.stdout.strip())
    assert nginx_workers(h) == workers, result.stderr
    result = sarge(h, "rollback", "web")
    assert result.returncode == 0, result.stderr
    assert front(port)[1].startswith("version 1")
    assert nginx_workers(h) == workers


def nginx_workers(h):
    import psutil

    master = h.supervisor.process("nginx")["pid"]
    return sorted(p.pid for p in psutil.Process(master).children())


@as_root
def test_a_unix_socket_is_for_the_app_and_nginx_alone(open_home, throwaway_user, second_user,
                                                      tmp_path):
    h, user, other = open_home, throwaway_user, second_user
    name_user(h, user.name)
    python = python_for(user)
    source = tmp_path / "app"
    source.mkdir()
    (source / "server.py").write_text(
        "import http.server, os, socketserver\n"
        "class S(socketserver.UnixStreamServer):\n"
        "    def get_request(self):\n"
        "        c, _ = self.socket.accept()\n"
        "        return c, ('local', 0)\n"
        "S(os.environ['SARGE_SOCKET'], http.server.SimpleHTTPRequestHandler).serve_forever()\n")
    (source / "Procfile").write_text(f"web: exec {python} server.py  # on $SARGE_SOCKET\n")
    (source / "index.html").write_text("over a socket")
    port = listen_port(76)
    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    assert front(port) == (200, "over a socket")  # nginx's workers (nobody) reach it
    folder = os.path.dirname(h.app_socket(instance_id))
    st = os.stat(folder)
    nobody = pwd.getpwnam("nobody")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (user.uid, nobody.pw_gid, 0o2750)
    probe = subprocess.run(
        ["runuser", "-u", other.name, "--", python_for(other), "-c",
         "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
         h.app_socket(instance_id)], capture_output=True, text=True)
    assert probe.returncode != 0 and "Permission denied" in probe.stderr
