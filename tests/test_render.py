"""What sarge generates parses back, with supervisor's own parser, to exactly what was meant."""

import os
import shlex
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supervisor.options import ServerOptions

from sarge import render
from sarge.config import Settings
from sarge.errors import RenderError
from sarge.instance import Instance


def supervisor_view(root, program_text, program_name):
    """Load root/etc/supervisord.conf (which includes the program) as supervisord does."""
    etc = os.path.join(root, "etc")
    conf = render.supervisord_conf(
        os.path.join(etc, "supervisord.conf"), home=root, socket=os.path.join(root, "s.sock"),
        pidfile=os.path.join(root, "s.pid"), log_dir=root, python="/usr/bin/python3")
    os.makedirs(os.path.join(etc, "supervisor.d"), exist_ok=True)
    with open(conf.path, "w") as f:
        f.write(conf.text)
    with open(os.path.join(etc, "supervisor.d", "p.conf"), "w") as f:
        f.write(program_text)
    options = ServerOptions()
    options.configfile = conf.path
    options.process_config(do_usage=False)
    (group,) = [g for g in options.process_group_configs if g.name == program_name]
    return group.process_configs[0]


# Text that may show up in a path or an argument: printable, with the characters that
# mean something to configparser, supervisord's expansions and shells.
awkward = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + " %()$'\"`;#=[]\\{}!*~é☃\t\n"),
    min_size=1, max_size=30,
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=awkward, name=awkward.filter(lambda s: "/" not in s))
def test_program_values_parse_back_exactly_or_are_refused(tmp_path, word, name):
    instance = Instance("web-abcdef", "web", 5000, "2026-01-01T00:00:00Z")
    command = ["/usr/bin/python3", "-m", "sarge.supervisord.launch", "/srv/" + word, instance.id]
    log_file = os.path.join(str(tmp_path), name + ".log")
    try:
        program = render.program_conf(
            "unused", instance=instance, directory="/srv/" + word, settings=Settings(),
            autostart=False, programs=[{"type": "web", "program": instance.id + "_web",
                                        "command": command, "log_file": log_file,
                                        "stop_signal": "TERM", "stop_timeout": 40}])
    except RenderError:
        return  # refused: fine, as long as nothing was written
    config = supervisor_view(str(tmp_path), program.text, instance.id)
    assert shlex.split(config.command) == command
    assert config.directory == "/srv/" + word
    assert config.stdout_logfile == log_file
    assert config.autostart is False and config.stopasgroup is False
    assert config.killasgroup is True and config.stopwaitsecs == 40
    assert config.name == "web"


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "x ;y", "x #y", " x", "x ", "a%(here)sb",
                                   "a\x00b"])
def test_ini_refuses_what_would_change_meaning(value):
    with pytest.raises(RenderError):
        render.ini(value)


def test_ini_doubles_percent_signs():
    assert render.ini("100%") == "100%%"
    assert render.ini("100%", expansions=2) == "100%%%%"
    assert render.ini("a;b#c") == "a;b#c"


def test_wrapper_quotes_every_word():
    file = render.wrapper("/h/bin/sarge", home="/h", argv=["/py thon", "-m", "sarge", "/h'x"])
    assert file.mode == 0o755
    last = file.text.strip().splitlines()[-1]
    assert shlex.split(last) == ["exec", "/py thon", "-m", "sarge", "/h'x", "$@"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=awkward.filter(lambda s: "/" not in s and s not in (".", "..")))
def test_nginx_config_is_valid_or_refused(tmp_path, name):
    import shutil
    import subprocess

    from sarge.frontend import sites
    from sarge.layout import Layout

    home = tmp_path / name
    routes = [{"app": "web", "instance": "web-abcdef", "listen": "127.0.0.1:1",
               "port": 2, "static": [["/static/", f"{home}/web-abcdef/staticfiles"]]}]
    try:
        conf = render.nginx_conf(
            str(tmp_path / "nginx.conf"), home=str(home), prefix=str(home / "var" / "nginx"),
            log_dir=str(home / "var" / "log"), user=None, drain_timeout=5,
            sites=sites.context(Layout(home), routes))
    except RenderError:
        return
    for sub in ("var/nginx/proxy", "var/log"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    sites.write_files(Layout(home), routes)
    (tmp_path / "nginx.conf").write_text(conf.text)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run([nginx, "-t", "-q", "-c", str(tmp_path / "nginx.conf"),
                             "-e", str(home / "var" / "log" / "e.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"error_log {home}/var/log/nginx-error.log;" in conf.text
    link = Layout(home).static_link("web", "/static/")  # a link a switch moves
    assert f"alias {link}/;" in conf.text
    shutil.rmtree(home)


try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def toml_value(text):
    """``text`` written with the toml filter, read back by a TOML parser."""
    return tomllib.loads(f"x = {render.toml(text)}\n")["x"]


def test_toml_strings_hold_every_character():
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert toml_value(every) == every


@given(st.text())
def test_toml_strings_parse_back_exactly(text):
    assert toml_value(text) == text


def test_toml_escapes_what_toml_forbids_and_refuses_what_it_cannot_hold():
    assert render.toml("a\x7fb\x00\x1f\t\"\\") == '"a\\u007fb\\u0000\\u001f\t\\"\\\\"'
    assert render.toml("line\nbreak\r") == '"line\\nbreak\\r"'
    with pytest.raises(RenderError, match="not valid Unicode"):
        render.toml("caf\udce9")  # b"caf\xe9" decoded with surrogateescape
