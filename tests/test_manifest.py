"""sarge-app.toml: what an app's source declares (how its types stop, static folders,
where it writes), read from real files in a temporary folder."""

import pytest

from sarge import manifest
from sarge.errors import BuildError
from sarge.manifest import Manifest, ProcessOptions

pytestmark = pytest.mark.fast


def load(tmp_path, text, types=("web", "worker", "beat")):
    (tmp_path / "sarge-app.toml").write_text(text)
    return manifest.load(str(tmp_path), set(types))


def test_no_file_is_an_empty_manifest(tmp_path):
    m = manifest.load(str(tmp_path))
    assert m == Manifest() and m.options("web") == ProcessOptions()


def test_a_whole_manifest(tmp_path):
    m = load(tmp_path, """
writable = ["instance", "var/cache"]
persistent = ["uploads"]

[processes.worker]
stop_signal = "TERM"
stop_timeout = 600

[processes.beat]
singleton = true

[static]
"/static/" = "staticfiles"
"/static/admin/" = "./admin-static/"
""")
    assert m.options("worker") == ProcessOptions("TERM", 600, False)
    assert m.options("beat") == ProcessOptions("TERM", None, True)
    assert m.options("web") == ProcessOptions()
    assert m.static == (("/static/admin/", "admin-static"), ("/static/", "staticfiles"))
    assert m.writable == ("instance", "var/cache") and m.persistent == ("uploads",)
    assert Manifest.from_dict(m.to_dict()) == m


@pytest.mark.parametrize("text, says", [
    ("stati = {}", "sarge-app.toml: stati is not a key sarge knows"),
    ("[processes.worker]\nstop_timout = 5", "processes.worker.stop_timout is not a key"),
    ("[processes.worker]\nstop_signal = 'KILL'", "processes.worker.stop_signal must be one of"),
    ("[processes.worker]\nstop_timeout = 0", "stop_timeout must be a whole number"),
    ("[processes.worker]\nstop_timeout = 1.5", "stop_timeout must be a whole number"),
    ("[processes.worker]\nstop_timeout = 86401", "from 1 to 86400"),
    ("[processes.worker]\nsingleton = 'yes'", "singleton must be true or false"),
    ("[processes.web]\nsingleton = true", "cannot be true for web"),
    ("[processes.clock]\nsingleton = true", "names a type the Procfile does not have"),
    ("[processes.Worker]\nsingleton = true", "is not a process type"),
    ("processes = 3", "processes must be a table"),
    ("[static]\n'static/' = 'x'", "must be a URL prefix"),
    ("[static]\n'/' = 'x'", "must be a URL prefix"),
    ("[static]\n'/a b/' = 'x'", "must be a URL prefix"),
    ("[static]\n'/s/' = '../etc'", "is not a folder inside the instance"),
    ("[static]\n'/s/' = '/etc'", "is not a folder inside the instance"),
    ("[static]\n'/s/' = 'a;b'", "is not a folder inside the instance"),
    ("[static]\n'/s/' = '.'", "is not a folder inside the instance"),
    ("[static]\n'/s/' = 3", "must be a folder of the instance"),
    ("writable = 'instance'", "writable must be a list"),
    ("writable = ['a', 'a/']", "names a folder twice"),
    ("writable = ['a']\npersistent = ['a']", "persistent names 'a', which writable names too"),
    ("writable = ['a']\npersistent = ['a/b']", "'a/b' is inside 'a'"),
    ("writable = [", "is not valid TOML"),
    ("[static]\n'/s/' = 'x'\npersistent = ['data']", "move persistent = [...] above [static]"),
    ("writable = ['public']\n[static]\n'/s/' = 'public/css'",
     "overlaps the writable folder 'public'"),
    ("persistent = ['media']\n[static]\n'/media/' = 'media'",
     "overlaps the persistent folder 'media'"),
    ("[processes.build]\nsingleton = true", "names a type the Procfile does not have"),
])
def test_bad_manifests_are_refused_in_one_line(tmp_path, text, says):
    with pytest.raises(BuildError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert says in message and "\n" not in message and message.startswith("sarge-app.toml")


def test_a_link_a_huge_file_and_bad_bytes_are_refused(tmp_path):
    (tmp_path / "elsewhere.toml").write_text("")
    (tmp_path / "sarge-app.toml").symlink_to(tmp_path / "elsewhere.toml")
    with pytest.raises(BuildError, match="not a regular file"):
        manifest.load(str(tmp_path))
    (tmp_path / "sarge-app.toml").unlink()
    (tmp_path / "sarge-app.toml").write_bytes(b"# " + b"x" * manifest.MAX_SIZE)
    with pytest.raises(BuildError, match="larger than"):
        manifest.load(str(tmp_path))
    (tmp_path / "sarge-app.toml").write_bytes(b"writable = ['\xff']")
    with pytest.raises(BuildError, match="not UTF-8"):
        manifest.load(str(tmp_path))
