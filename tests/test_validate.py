"""``sarge validate``: a table of broken apps, each problem reported with its file and
line; the command line's two shapes (``sarge validate ...`` without a home, ``sarge
HOME ...`` as before); ``--deep`` on real apps with a throwaway virtualenv."""

import os
import shutil

import pytest

from sarge.package import validate
from sarge.package.deep import entry_point

from .conftest import HERE, WEBAPP, WHEELS, needs_wheels, run_main

GOOD_PROCFILE = "web: gunicorn app:app --bind 127.0.0.1:$PORT\n"


def write(folder, files):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, tuple):  # ("link", target)
            path.symlink_to(text[1])
        elif isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return folder


#: (files of the app besides a good Procfile, the problem: file, line, severity, words).
BROKEN = [
    ({"Procfile": "web gunicorn app:app\n"}, ("Procfile", 1, "error", "'type: command'")),
    ({"Procfile": "# a comment\n\nweb: a $PORT\nweb: b $PORT\n"},
     ("Procfile", 4, "error", "defined twice")),
    ({"Procfile": "worker: celery -A tasks worker\n"},
     ("Procfile", None, "error", "no 'web' process")),
    ({"Procfile": None}, (None, None, "error", "neither a Procfile")),
    ({"Procfile": "release: migrate\nweb: gunicorn app:app --bind 0.0.0.0:8000\n"},
     ("Procfile", 2, "error", "does not listen on $PORT")),
    ({"Procfile": "web: python serve.py\n"}, ("Procfile", 1, "warning", "$PORT")),
    ({"Procfile": b"web: \xff\n"}, ("Procfile", None, "error", "UTF-8")),
    ({"requirements.txt": "flask==3.0.3\n\n# pinned\ngunicorn>=21\n"},
     ("requirements.txt", 4, "warning", "gunicorn is not pinned")),
    ({"requirements.txt": "flask==3.0.3\nflask ==== 3\n"},
     ("requirements.txt", 2, "error", "not a requirement pip understands")),
    ({"requirements.txt": "flask==3.0.*\n"}, ("requirements.txt", 1, "warning", "not pinned")),
    ({"requirements.txt": "-r base.txt\nrequests==2.32.3 \\\n    --hash=sha256:abc\nx y\n"},
     ("requirements.txt", 4, "error", "'x y'")),
    ({"requirements.txt": "./vendor/pkg\n"}, ("requirements.txt", 1, "warning", "path or URL")),
    ({"mysite/settings.py": "import os\nSTATIC_URL = '/static/'\n\n"
                            "DATABASES = {'default': {'NAME': '/home/me/db.sqlite3'}}\n"},
     ("mysite/settings.py", 4, "error", "'/home/me/db.sqlite3'")),
    ({"manage.py": "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.prod')\n",
      "proj/prod.py": "MEDIA_ROOT = '/Users/me/media'\nMEDIA_URL = '/media/'\n"},
     ("proj/prod.py", 1, "error", "MEDIA_ROOT")),
    ({"app.py": "from flask import Flask\napp = Flask(__name__)\n"
                "app.config.from_mapping(\n    SECRET_KEY='x',\n    UPLOADS='/srv/up',\n)\n"},
     ("app.py", 5, "error", "UPLOADS")),
    ({"app.py": "app.config['DATABASE'] = '/var/lib/me/x.db'\n"},
     ("app.py", 1, "error", "DATABASE")),
    ({"instance/config.py": "DATABASE = '~/x.db'\n"}, ("instance/config.py", 1, "error", "~/")),
    ({"runtime.txt": "python-2.7\n"}, ("runtime.txt", 1, "error", "no python2.7")),
    ({"runtime.txt": "ruby-3\n"}, ("runtime.txt", 1, "error", "python-3.11")),
    ({".env": "SECRET=1\n"}, (".env", None, "warning", "secrets")),
    ({"db.sqlite3": ""}, ("db.sqlite3", None, "warning", "development database")),
    ({"pkg/__pycache__/a.cpython-311.pyc": b"\0"}, ("pkg/__pycache__/", None, "warning",
                                                   "bytecode")),
    ({"old.pyc": b"\0"}, ("old.pyc", None, "warning", "bytecode")),
    ({".venv/pyvenv.cfg": "home = /usr/bin\n", ".venv/lib/x.py": ""},
     (".venv/", None, "warning", "a deploy makes its own")),
    ({"media": ("link", "/var/www/media")}, ("media", None, "error", "out of the app")),
    ({"pkg/up": ("link", "../../etc")}, ("pkg/up", None, "error", "a deploy refuses it")),
]


def case_id(case):
    files, (file, line, severity, words) = case
    return f"{file}:{line}:{words[:20]}"


@pytest.mark.fast
@pytest.mark.parametrize("files,problem", BROKEN, ids=[case_id(c) for c in BROKEN])
def test_each_problem_is_reported_with_its_file_and_line(tmp_path, files, problem):
    files = {"Procfile": GOOD_PROCFILE, "app.py": "app = None\n", **files}
    if files["Procfile"] is None:
        del files["Procfile"]
    found = validate(str(write(tmp_path, files)))
    file, line, severity, words = problem
    matching = [f for f in found if (f.file, f.line, f.severity) == (file, line, severity)
                and words in f.message]
    assert matching, [str(f) for f in found]
    others = [f for f in found if f not in matching and f.error]
    assert others == [] or severity == "error", [str(f) for f in others]


@pytest.mark.fast
def test_every_problem_at_once_and_the_exit_status(tmp_path):
    """Many problems in one source: all reported, in file and line order, on stdout as
    FILE:LINE: SEVERITY: message; exit status 1; JSON for scripts."""
    write(tmp_path, {"Procfile": "web: gunicorn app:app\nbad line\n",
                     "requirements.txt": "flask\nnot valid!\n",
                     "settings.py": "LOG = '/home/me/log'\n", ".env": ""})
    code, out, err = run_main(["validate", tmp_path])
    lines = out.splitlines()
    assert code == 1, (out, err)
    assert [line.split(": ")[0] for line in lines] == [
        ".env", "Procfile:1", "Procfile:2", "requirements.txt:1", "requirements.txt:2",
        "settings.py:1"], lines
    assert "not deployable (4 error(s), 2 warning(s))" in err
    import json

    code, out, _ = run_main(["validate", tmp_path, "--json"])
    data = json.loads(out)
    assert code == 1 and data["deployable"] is False and len(data["findings"]) == 6
    assert data["findings"][1] == {"file": "Procfile", "line": 1, "severity": "error",
                                   "message": data["findings"][1]["message"]}


@pytest.mark.fast
def test_a_deployable_app_exits_0_and_strict_makes_pins_errors(tmp_path, webapp):
    code, out, err = run_main(["validate", webapp])
    assert code == 0, (out, err)
    assert out == "requirements.txt:1: warning: gunicorn is not pinned: write " \
                  "gunicorn==VERSION (pip freeze says which)\n"
    assert "deployable (0 error(s), 1 warning(s))" in err
    code, out, err = run_main(["validate", "--strict", webapp])
    assert code == 1 and out.startswith("requirements.txt:1: error:"), (out, err)
    pinned = write(tmp_path / "pinned", {"Procfile": GOOD_PROCFILE, "requirements.txt":
                              "gunicorn==23.0.0 ; python_version >= '3.8'\n"})
    assert run_main(["validate", "--strict", pinned]) == (0, "", f"{pinned}: deployable "
                                                          "(0 error(s), 0 warning(s))\n")


@pytest.mark.fast
@pytest.mark.parametrize("argv,words", [
    (["validate"], "Missing argument 'SOURCE'. (see `sarge validate --help`)"),
    (["validate", "/nonexistent/app"], "no such source: /nonexistent/app"),
    (["package", WEBAPP], "Missing option '-o'"),
    (["validate", WEBAPP, "-e", "no-equals"], "invalid --env 'no-equals'"),
])
def test_bad_input_is_one_line_and_a_usage_status(argv, words):
    code, out, err = run_main(argv)
    assert out == "" and err.count("\n") == 1 and err.startswith("sarge: "), (out, err)
    assert words in err, err
    assert code == (1 if "no such" in words else 2), (code, err)


@pytest.mark.fast
def test_the_two_shapes_of_the_command_line(tmp_path, webapp):
    """``sarge validate ...`` and ``sarge package ...`` need no home; ``sarge HOME ...``
    is as it was (a home path that is no command), and --help says both."""
    code, out, _ = run_main(["--help"])
    assert code == 0 and "Usage: sarge [OPTIONS] HOME COMMAND [ARGS]..." in out, out
    assert "Commands without a home (sarge COMMAND ...)" in out
    assert "validate ..." in out and "package ..." in out and "deploy" in out
    code, out, _ = run_main(["validate", "--help"])
    assert code == 0 and "Usage: sarge validate [OPTIONS] SOURCE" in out, out
    code, out, _ = run_main(["package", "-h"])
    assert code == 0 and "Usage: sarge package [OPTIONS] SOURCE" in out, out
    home = tmp_path / "validate"  # a home that happens to be named so: ./validate
    code, out, err = run_main([f"{home}", "init"])
    assert code == 0 and os.path.isfile(home / "etc" / "sarge.toml"), err
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    code, out, err = run_main([home, "validate", webapp])  # HOME/bin/sarge validate ...
    assert code == 0 and "deployable" in err, err
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
    code, out, err = run_main([home, "package", "--help"])
    assert code == 0 and "Usage: sarge HOME package [OPTIONS] SOURCE" in out, out


@pytest.mark.fast
def test_an_archive_is_validated_as_unpacked(tmp_path):
    """An archive is read through sarge's safe unpacker; its one folder is the app."""
    import tarfile

    app = write(tmp_path / "app", {"Procfile": "web: gunicorn app:app\n"})
    archive = tmp_path / "app.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(app, arcname="app")
    found = validate(str(archive))
    assert [(f.file, f.line) for f in found] == [("Procfile", 1)], found
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        tar.addfile(tarfile.TarInfo("Procfile"))
        tar.addfile(tarfile.TarInfo("../outside"))
    code, out, err = run_main(["validate", evil])
    assert code == 1 and "refused" in err and out == "", err
    assert not (tmp_path.parent / "outside").exists()


@pytest.mark.fast
@pytest.mark.parametrize("command,entry", [
    ("gunicorn app:app --bind 127.0.0.1:$PORT", ("app", "app", False)),
    ('gunicorn "flaskr:create_app()" --bind 127.0.0.1:$PORT', ("flaskr", "create_app()", False)),
    ("gunicorn -k uvicorn.workers.UvicornWorker mysite.wsgi", ("mysite.wsgi", "application",
                                                              False)),
    ("uvicorn --factory pkg.main:make --port $PORT", ("pkg.main", "make", True)),
    ("python -m gunicorn --bind unix:$SARGE_SOCKET web:application", ("web", "application",
                                                                     False)),
    ("python serve.py", None),
])
def test_the_entry_point_deep_imports(command, entry):
    assert entry_point(command) == entry


# -- --deep: the real apps, in a throwaway virtualenv from .cache/wheels ---------------------

OFFLINE_PIP = ["--pip-arg=--no-index", f"--pip-arg=--find-links={WHEELS}"]
APPS = os.path.join(HERE, "apps")


def test_deep_runs_the_build_and_release_and_imports_the_app(tmp_path):
    """The Django site: collectstatic and migrate run against a scratch data folder, then
    mysite.wsgi:application imports; without the secret its settings read, the build
    step fails, said at its Procfile line. The source is left as it was."""
    needs_wheels()
    site = tmp_path / "site"
    shutil.copytree(os.path.join(APPS, "djangosite"), site)
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    code, out, err = run_main(["validate", "--deep", *OFFLINE_PIP, site,
                               "-e", "DJANGO_SECRET_KEY=x"])
    assert code == 0, (out, err)
    assert "deep: build: python manage.py collectstatic" in err
    assert "deep: import mysite.wsgi:application" in err
    code, out, err = run_main(["validate", "--deep", *OFFLINE_PIP, site])
    assert code == 1 and "Procfile:1: error: --deep: the build step failed" in out, (out, err)
    assert "DJANGO_SECRET_KEY" in out
    assert sorted(p.relative_to(site) for p in site.rglob("*")) == before


def test_deep_finds_an_entry_point_that_does_not_load(tmp_path):
    needs_wheels()
    app = tmp_path / "asgi"
    shutil.copytree(os.path.join(APPS, "asgiapp"), app)
    text = (app / "app.py").read_text()
    (app / "app.py").write_text(text.replace("\napp = ", "\napplication = "))
    code, out, err = run_main(["validate", "--deep", *OFFLINE_PIP, app])
    assert code == 1, (out, err)
    assert "Procfile:1: error: --deep: the web entry point app:app does not load" in out, out
    (app / "app.py").write_text(text + "\napp = 42\n")
    code, out, err = run_main(["validate", "--deep", *OFFLINE_PIP, app])
    assert code == 1 and "app:app is a int, not a WSGI or ASGI app" in out, out
