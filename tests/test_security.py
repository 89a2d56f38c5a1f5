"""What an app (its user, its Procfile, its files) and hostile input can do to the home,
to the machine's front-end and to the operator's terminal: each is refused in one line,
or removed, or shown harmless. The users' tests run as root with throwaway users."""

import os
import subprocess
import sys
import threading

import pytest

from sarge import users
from sarge.config import Settings
from sarge.files import Left, remove_tree

from .conftest import (
    as_root,
    deploy,
    edit_settings,
    listen_port,
    name_user,
    new,
    put_server,
    python_for,
    sarge,
    snapshot,
)
from .fakes import Rig


def one_line_refusal(result, *fragments, code=1):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("sarge: ") and result.stderr.count("\n") == 1, \
        result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def app_source(tmp_path, procfile=None):
    """A source folder without requirements (no virtualenv to build): http.server."""
    source = tmp_path / "app"
    source.mkdir(exist_ok=True)
    (source / "Procfile").write_text(
        procfile or f"web: exec {sys.executable} -m http.server --bind 127.0.0.1 $PORT\n")
    return source


def refused_everywhere(h, tmp_path, *fragments):
    """``start`` and ``deploy`` both refuse in one line and change nothing."""
    instance_id = new(h)
    put_server(h, instance_id, "#!/bin/sh\nexec sleep 60\n")
    before = snapshot(h.path)
    message = one_line_refusal(sarge(h, "start", instance_id), *fragments)
    assert h.supervisor.process(f"{instance_id}:web")["statename"] == "STOPPED"
    one_line_refusal(deploy(h, app_source(tmp_path), "--app", "web", "--listen",
                            f"127.0.0.1:{listen_port(60)}"), *fragments)
    assert snapshot(h.path) == before
    return message


@pytest.fixture
def alias_user(throwaway_user):
    """A second name for the throwaway user's uid, with a group of its own."""
    name = f"{throwaway_user.name}a"
    subprocess.run(["useradd", "--system", "--non-unique", "--uid", str(throwaway_user.uid),
                    "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    yield name
    # -f: the uid may run something (the throwaway user's processes are its own)
    subprocess.run(["userdel", "-f", name], capture_output=True)


@pytest.fixture
def in_group():
    """usermod -aG GROUP USER, undone after the test."""
    added = []

    def add(user, group):
        subprocess.run(["usermod", "-aG", group, user], check=True, capture_output=True)
        added.append((user, group))
    yield add
    for user, group in added:
        subprocess.run(["gpasswd", "-d", user, group], capture_output=True)


def group_of(user):
    import grp

    return grp.getgrgid(user.gid).gr_name


# -- an app's user apart from nginx's workers and from the other apps ---------------------

@as_root
def test_nobody_as_an_apps_user_is_refused(open_home, tmp_path):
    """nobody runs nginx's workers of every home: an app running as nobody could kill
    them, by name or by number."""
    h = open_home
    for named in ("nobody", "65534"):
        edit_settings(h, {'default = ""': f'default = "{named}"'})
        message = refused_everywhere(h, tmp_path, "nobody (the app web) and nobody "
                                     "(nginx's workers) are the same user",
                                     "adduser --system --group NAME")
        assert "every home on this machine" in message
        edit_settings(h, {f'default = "{named}"': 'default = ""'})
    # init --user nobody too: a new sarge.toml leaves nginx's workers to nobody
    result = subprocess.run([sys.executable, "-m", "sarge", str(tmp_path / "new-home"),
                             "init", "--user", "nobody"], capture_output=True, text=True)
    one_line_refusal(result, "nobody ([users] default) and nobody (nginx's workers)")
    assert not os.path.exists(tmp_path / "new-home")


@as_root
def test_nginx_workers_may_not_run_as_an_apps_user(open_home, throwaway_user, tmp_path):
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    name_user(h, user.name, key="frontend")
    refused_everywhere(h, tmp_path, f"{user.name} (the app web) and {user.name} "
                       "(nginx's workers) are the same user")
    # seen from nginx's side: the deploy of an app that runs as root, while another app
    # runs as nginx's workers' user
    edit_settings(h, {f'default = "{user.name}"': 'default = "root"',
                      '# myapp = "myapp"': f'shop = "{user.name}"'})
    before = snapshot(h.path)
    result = deploy(h, app_source(tmp_path), "--app", "web", "--listen",
                    f"127.0.0.1:{listen_port(61)}")
    one_line_refusal(result, f"{user.name} (nginx's workers) and {user.name} (the app shop) "
                     "are the same user")
    assert snapshot(h.path) == before


@as_root
def test_an_app_user_in_a_group_of_another_is_refused(open_home, throwaway_user,
                                                      second_user, in_group, tmp_path):
    """A supplementary group is enough: sarge shares an app's code with its user through
    the user's group, and anyone in it reads the code."""
    h, user, other = open_home, throwaway_user, second_user
    name_user(h, user.name)
    edit_settings(h, {'# myapp = "myapp"': f'shop = "{other.name}"'})
    instance_id = new(h)
    put_server(h, instance_id, "#!/bin/sh\nexec sleep 60\n")
    sarge(h, "start", instance_id, check=True)  # apart: fine
    sarge(h, "stop", instance_id, check=True)

    in_group(other.name, group_of(user))
    one_line_refusal(sarge(h, "start", instance_id),
                     f"{user.name} (the app web) and {other.name} (the app shop) share the "
                     f"group {group_of(user)}", "adduser --system --group NAME")
    one_line_refusal(sarge(h, "run", instance_id, "true"), "share the group")
    subprocess.run(["gpasswd", "-d", other.name, group_of(user)], capture_output=True)
    # ... and nginx's workers' group (nogroup, nobody's)
    in_group(user.name, "nogroup")
    one_line_refusal(sarge(h, "start", instance_id),
                     f"{user.name} (the app web) and nobody (nginx's workers) share the "
                     "group nogroup")


@as_root
def test_one_uid_under_two_names_is_refused(open_home, throwaway_user, alias_user, tmp_path):
    h, user = open_home, throwaway_user
    name_user(h, user.name)
    edit_settings(h, {'# myapp = "myapp"': f'shop = "{alias_user}"'})
    refused_everywhere(h, tmp_path, f"{user.name} (the app web) and {alias_user} (the app "
                       f"shop) are the same user, uid {user.uid}, under two names")
    # nginx's workers under another name for an app's uid
    edit_settings(h, {f'shop = "{alias_user}"': "", 'frontend = ""':
                      f'frontend = "{alias_user}"'})
    refused_everywhere(h, tmp_path, f"{user.name} (the app web) and {alias_user} (nginx's "
                       f"workers) are the same user, uid {user.uid}, under two names",
                       "[users] frontend")


def test_the_users_an_app_is_compared_with():
    settings = Settings(user="alice", frontend_user="", app_users=(("shop", "bob"),
                                                                   ("web", "carol")))
    assert users.others(settings, "web") == [("the app shop", "bob"),
                                             ("[users] default", "alice"),
                                             ("nginx's workers", "nobody")]
    assert users.others(settings, users.FRONTEND) == [
        ("the app shop", "bob"), ("the app web", "carol"), ("[users] default", "alice")]


# -- removing what an app made ------------------------------------------------------------

@pytest.fixture
def remove_after():
    """Remove the paths it is given after the test, however it ends: a tree thousands
    deep left behind would break pytest's own clean-up of its folders. (With rm -rf,
    what sarge tells the operator to use.)"""
    paths = []
    yield paths.append
    for path in paths:
        subprocess.run(["rm", "-rf", "--", str(path)], check=True)


def deep_folder(top, depth, name="d"):
    """A chain of ``depth`` folders under ``top``, made relative to descriptors (no path
    is ever longer than a name); returns a descriptor of the deepest (to close)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        deeper = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    return fd


def outside_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    return outside


def intact(outside):
    return sorted(os.listdir(outside)) == ["keep"] and (outside / "keep").read_text() == "mine"


def test_remove_tree_never_follows_a_link(tmp_path):
    outside = outside_folder(tmp_path)
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "file").write_text("x")
    os.symlink(outside, tree / "a" / "to-outside")
    os.symlink(outside / "keep", tree / "a" / "b" / "to-a-file")
    os.symlink("nowhere", tree / "dangling")
    os.mkfifo(tree / "a" / "fifo")  # removed, never opened
    assert remove_tree(tree) == []
    assert not os.path.lexists(tree) and intact(outside)
    os.symlink(outside, tmp_path / "link")  # the top itself a link: the link goes
    assert remove_tree(tmp_path / "link") == []
    assert not os.path.lexists(tmp_path / "link") and intact(outside)
    assert remove_tree(tmp_path / "not-there") == []
    (tmp_path / "file").write_text("x")
    assert remove_tree(tmp_path / "file") == [] and not os.path.exists(tmp_path / "file")


def test_remove_tree_is_bounded_and_reports_what_it_left(tmpfs_path, remove_after):
    tree = tmpfs_path / "tree"
    tree.mkdir()
    remove_after(tree)
    os.close(deep_folder(tree, 3000))  # far past Python's recursion limit
    (tree / "sibling").mkdir()
    (tree / "sibling" / "f").write_text("x")
    left = remove_tree(tree, max_depth=2000)
    assert len(left) == 1 and left[0].reason == "more than 2000 folders deep"
    # named by its top and its end, the middle left out
    assert left[0].path == os.path.join(tree, "d", "d", "d", "[1994 more]", "d", "d", "d")
    assert not os.path.exists(tree / "sibling")  # the rest is gone
    assert remove_tree(tree) == [] and not os.path.exists(tree)  # 3000 deep: within bounds

    tree.mkdir()
    for i in range(10):
        (tree / f"f{i}").write_text("x")
    left = remove_tree(tree, max_entries=4)
    assert [entry.reason for entry in left] == ["more than 4 entries: stopped there"]
    assert len(os.listdir(tree)) == 7  # four removed (the folder counts), then it stopped
    assert remove_tree(tree) == []


def test_remove_tree_survives_a_tree_swapped_under_it(tmp_path):
    """Another process turns folders of the tree into links to a folder outside, and
    back, as fast as it can: one near the top, one deeper than the folders remove_tree
    keeps open (it climbs back through ".." there), which it also moves out of its
    parent. What the links point at is never touched."""
    outside = outside_folder(tmp_path)
    chain = os.path.join(*["d"] * 40)
    for round_ in range(20):
        tree = tmp_path / f"tree{round_}"
        for i in range(30):
            (tree / "a" / f"sub{i}").mkdir(parents=True)
            (tree / "a" / f"sub{i}" / "keep").write_text("x")
        os.makedirs(tree / chain)
        for level in range(1, 41):
            (tree / os.path.join(*["d"] * level) / "f").write_text("x")
        stop = threading.Event()

        def swap(tree=tree, deep=tree / os.path.join(*["d"] * 35)):
            while not stop.is_set():
                for path, away in ((tree / "a", tree / "b"), (deep, tree / "moved")):
                    try:
                        os.rename(path, away)
                        os.symlink(outside, path)
                        os.unlink(path)
                        os.rename(away, path)
                    except OSError:
                        pass
        swapper = threading.Thread(target=swap)
        swapper.start()
        try:
            left = remove_tree(tree)
        finally:
            stop.set()
            swapper.join()
        assert all(isinstance(entry, Left) for entry in left)
        assert intact(outside), round_
        assert remove_tree(tree) == []
        assert not os.path.lexists(tree)


def test_a_3000_deep_folder_made_by_an_app_is_destroyed(running_on_tmpfs, tmp_path,
                                                        remove_after):
    """In its runtime folder (``$XDG_RUNTIME_DIR``, the app user's own), with a link to a
    folder outside at the bottom. (Apps of this home run as root.)"""
    h = running_on_tmpfs
    outside = outside_folder(tmp_path)
    instance_id = new(h)
    remove_after(h.runtime_dir(instance_id))
    script = ("import os, sys\n"
              "os.chdir(os.environ['XDG_RUNTIME_DIR'])\n"
              "for _ in range(3000):\n"
              "    os.mkdir('d'); os.chdir('d')\n"
              "os.symlink(sys.argv[1], 'outside')\n")
    result = sarge(h, "run", instance_id, sys.executable, "-c", script, str(outside))
    assert result.returncode == 0, result.stderr
    result = sarge(h, "destroy", instance_id)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == f"{instance_id} destroyed\n"
    for path in (h.instance_dir(instance_id), h.runtime_dir(instance_id),
                 h.record_path(instance_id)):
        assert not os.path.exists(path)
    assert intact(outside)


@as_root
def test_a_deep_folder_made_by_a_throwaway_apps_user_is_destroyed(open_tmpfs_home,
                                                                 throwaway_user, tmp_path,
                                                                 remove_after):
    h, user = open_tmpfs_home, throwaway_user
    name_user(h, user.name)
    python = python_for(user)
    instance_id = new(h)
    remove_after(h.runtime_dir(instance_id))
    script = ("import os\n"
              "os.chdir(os.environ['XDG_RUNTIME_DIR'])\n"
              "for _ in range(3000):\n"
              "    os.mkdir('d'); os.chdir('d')\n"
              "os.symlink(sys.argv[1], 'outside')\n")
    outside = outside_folder(tmp_path)
    result = sarge(h, "run", instance_id, python, "-c", "import sys\n" + script,
                   str(outside))
    assert result.returncode == 0, result.stderr
    assert os.stat(os.path.join(h.runtime_dir(instance_id), "d")).st_uid == user.uid
    result = sarge(h, "destroy", instance_id)
    assert result.returncode == 0 and result.stderr == f"{instance_id} destroyed\n", \
        result.stderr
    assert not os.path.exists(h.runtime_dir(instance_id)) and intact(outside)


@pytest.mark.fast
def test_a_later_deploys_clean_up_removes_what_an_app_made_deep(tmpfs_path, tmp_path,
                                                               remove_after):
    """The clean-up of a deploy (the fast tier's fakes for supervisord, nginx and the
    app: what is tested is what the clean-up removes, and what it does when it cannot)."""
    rig = Rig(tmpfs_path / "home")
    h = rig.home

    def deploy_once(**kwargs):
        rig.steps.clear()
        instance = rig.deployer().deploy(str(source), "web", **kwargs)
        return instance.id, dict(rig.steps)["clean up"]

    def made_deep(instance_id, depth):
        """What the app made in its runtime folder (which its launcher creates)."""
        os.makedirs(h.runtime_dir(instance_id), exist_ok=True)
        remove_after(h.runtime_dir(instance_id))
        os.close(deep_folder(h.runtime_dir(instance_id), depth))

    try:
        source = app_source(tmp_path)
        first, _ = deploy_once(listen=f"127.0.0.1:{listen_port(62)}")
        made_deep(first, 3000)
        second, _ = deploy_once()  # first: kept
        third, cleaned = deploy_once()  # first: removed
        assert cleaned == f"removed {first}"
        assert {i.id for i in h.instances()} == {second, third}
        assert not os.path.exists(h.runtime_dir(first))
        assert not os.path.exists(h.instance_dir(first))

        # deeper than removal goes: the deploy goes on, the instance waits for the next one
        made_deep(second, 10_001)
        fourth, cleaned = deploy_once()
        assert cleaned == f"removed {second} (not all of it: `sarge HOME destroy {second}` " \
                          "says what is left)"
        assert rig.deployer().state("web").current == fourth
        assert second in {i.id for i in h.instances()}
        subprocess.run(["rm", "-rf", h.runtime_dir(second)], check=True)
        deploy_once()  # its clean-up before it starts: gone
        assert second not in {i.id for i in h.instances()}
        assert not os.path.exists(h.record_path(second))
    finally:
        rig.close()


def test_what_destroy_cannot_remove_is_named_and_a_destroy_again_finishes(
        running_on_tmpfs, remove_after):
    """Deeper than remove_tree goes: destroy says so in one line, keeps the record (and
    the port) and removes the rest; once the folder is removed by hand, it finishes."""
    h = running_on_tmpfs
    instance_id = new(h)
    put_server(h, instance_id)
    sarge(h, "start", instance_id, check=True)
    sarge(h, "stop", instance_id, check=True)
    port = h.get(instance_id).port
    runtime = h.runtime_dir(instance_id)
    remove_after(runtime)
    os.close(deep_folder(runtime, 10_001))

    result = sarge(h, "destroy", instance_id)
    message = one_line_refusal(result, f"{instance_id} is not destroyed: {runtime}/d/d/d/",
                               "more than 10000 folders deep", "rm -rf",
                               f"sarge HOME destroy {instance_id}` again")
    assert "destroyed\n" not in result.stderr and "[" in message
    assert os.path.exists(h.record_path(instance_id))  # still listed, to finish later
    assert os.path.islink(os.path.join(h.path, "var", "ports", str(port)))
    assert not os.path.exists(h.instance_dir(instance_id))  # the rest is gone
    assert not os.path.exists(h.program_path(instance_id))
    assert instance_id in sarge(h, "list").stdout

    subprocess.run(["rm", "-rf", runtime], check=True)  # by hand, as the message says
    result = sarge(h, "destroy", instance_id)
    assert result.returncode == 0 and result.stderr == f"{instance_id} destroyed\n", \
        result.stderr
    assert not os.path.exists(h.record_path(instance_id))
    assert not os.path.lexists(os.path.join(h.path, "var", "ports", str(port)))


# -- hostile input and output -------------------------------------------------------------

def test_deeply_nested_json_is_refused_in_one_line(home):
    before = snapshot(home.path)
    for description in ("[" * 100_000, "[" * 50_000 + "]" * 50_000,
                        '{"a": ' * 15_000 + "1" + "}" * 15_000):
        one_line_refusal(sarge(home, "new", description), "nested too deeply", code=2)
    assert snapshot(home.path) == before
    # anything else nested too deeply, here the settings, is one line too
    with open(home.settings_path, "a") as f:
        f.write("\n[deep]\nx = " + "[" * 50_000 + "]" * 50_000 + "\n")
    before = snapshot(home.path)
    one_line_refusal(sarge(home, "new", '{"application_name": "web"}'), "nested too deeply")
    assert snapshot(home.path) == before


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m\x08"  # no \r: it would end the Procfile's line


def test_escape_sequences_in_a_procfile_never_reach_the_terminal(running, tmp_path):
    """A Procfile's commands are shown in the deploy's progress and in its errors: with
    their control characters as ``?``, as logs are."""
    h = running
    source = app_source(tmp_path, f"release: true # {ESCAPES}\n"
                        f"web: exec {sys.executable} -m http.server --bind 127.0.0.1 "
                        f"$PORT # {ESCAPES}\n")
    result = deploy(h, source, "--app", "web", "--listen", f"127.0.0.1:{listen_port(63)}")
    assert result.returncode == 0, result.stderr
    assert "true # ?]0;owned??[2J?31m?" in result.stderr
    (source / "Procfile").write_text(f"release: false # {ESCAPES}\nweb: sleep 60\n")
    result = deploy(h, source, "--app", "web")
    assert result.returncode == 1 and "false # ?]0;owned" in result.stderr, result.stderr
    for output in (result.stdout, result.stderr):
        assert not any(c in output for c in "\x1b\x07\x9b\x08")


def test_repair_says_what_a_missing_program_may_mean(home):
    """A new (a deploy's first step) killed between the record and the program leaves
    what an interrupted destroy leaves: repair says both, and what it does."""
    instance_id = new(home)
    os.unlink(home.program_path(instance_id))
    result = sarge(home, "repair")
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if instance_id in line)
    assert "a new or a deploy was interrupted" in line and "a destroy" in line
    assert "repair leaves the instance as it is" in line
    assert f"sarge HOME destroy {instance_id}" in line
