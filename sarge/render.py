"""Everything sarge generates, rendered from the package's Jinja2 templates.

The functions here are pure: they return :class:`File` values and never touch
the disk (``sarge.home`` writes them, atomically).  One shared Environment
renders every template with ``StrictUndefined`` and four filters:

``ini``
    makes a value safe inside supervisord's INI files: ``%`` is doubled
    (supervisord expands ``%(name)s``), and a value that could end the line or
    start a comment is refused with :class:`~sarge.errors.RenderError`.
``shjoin``
    quotes a list of words for a shell (or supervisord's shlex split).
``toml``
    quotes a string for ``sarge.toml``, escaping what TOML forbids in a basic
    string (control characters as ``\\u007f``).
``nginx``
    passes a path or word into nginx's configuration, or refuses one that
    would need quoting.
"""

from __future__ import annotations

import os
import re
import shlex

from .errors import RenderError
from .files import File

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

# configparser (as supervisord sets it up) ends a value at a newline and starts an
# inline comment at whitespace followed by ';' or '#'.
_INI_UNSAFE = re.compile(r"[\n\r\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]|\s[;#]")


def ini(value, expansions: int = 1) -> str:
    """Escape ``value`` for a supervisord INI value, or refuse it.

    ``expansions`` is how many times supervisord %-expands the option: twice
    for ``stdout_logfile`` (supervisor 4 expands it once on reading and again
    on its own), once for everything else.
    """
    text = str(value)
    # supervisord replaces the text %(here)s before it expands the rest, escaped or not.
    if _INI_UNSAFE.search(text) or text != text.strip() or "%(here)s" in text:
        raise RenderError(
            f"{text!r} cannot be written into supervisord's configuration "
            "(line breaks, surrounding spaces, ' ;', ' #' and %(here)s are not allowed)"
        )
    return text.replace("%", "%" * 2**expansions)


_NGINX_SAFE = re.compile(r"[^\s\"'\\;{}#$\x00-\x1f\x7f]+")


def nginx(value) -> str:
    """A path or word for nginx's configuration, or :class:`RenderError` when it would
    need quoting (nginx treats ``;``, braces, quotes, ``#``, ``$`` and spaces specially)."""
    text = str(value)
    if not _NGINX_SAFE.fullmatch(text):
        raise RenderError(
            f"{text!r} cannot be written into nginx's configuration (spaces, quotes, ';', "
            "'#', '$', braces and control characters are not allowed); use a home path "
            "without them"
        )
    return text


# What a TOML basic string cannot hold as it is: the quote, the backslash, and the control
# characters U+0000-U+001F (tab excepted) and U+007F; and a lone surrogate, which no TOML
# file (UTF-8) can hold at all.
_TOML_UNSAFE = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\n": "\\n", "\f": "\\f",
                 "\r": "\\r"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def toml(value) -> str:
    """A TOML basic string holding ``value``: ``"``, ``\\`` and the control characters TOML
    forbids escaped (``\\n``, ``\\u007f``); :class:`RenderError` for a lone surrogate
    (a file name that is not UTF-8, decoded with ``surrogateescape``)."""
    text = str(value)
    if _SURROGATE.search(text):
        raise RenderError(f"{text!r} cannot be written into a TOML file (it is not valid "
                          "Unicode: a name that is not UTF-8?)")
    return '"' + _TOML_UNSAFE.sub(
        lambda m: _TOML_ESCAPES.get(m[0]) or f"\\u{ord(m[0]):04x}", text) + '"'


def shjoin(words) -> str:
    """Quote each word for a POSIX shell and join them with spaces."""
    return " ".join(shlex.quote(str(word)) for word in words)


_environment = None


def environment():
    """The one Jinja2 Environment, made on first use (jinja2 is imported lazily)."""
    global _environment
    if _environment is None:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        env.filters["ini"] = ini
        env.filters["shjoin"] = shjoin
        env.filters["nginx"] = nginx
        env.filters["toml"] = toml
        _environment = env
    return _environment


def render(template: str, **context) -> str:
    """Render the named package template with ``context``."""
    return environment().get_template(template).render(**context)


def settings_file(path: str, defaults) -> File:
    """The commented ``etc/sarge.toml`` that ``init`` writes, showing ``defaults``."""
    return File(path, render("sarge.toml.j2", s=defaults))


def supervisord_conf(path: str, *, home: str, socket: str, pidfile: str, log_dir: str,
                     python: str) -> File:
    """The home's ``etc/supervisord.conf``."""
    return File(
        path,
        render("supervisord.conf.j2", home=home, socket=socket, pidfile=pidfile,
               log_dir=log_dir, python=python),
    )


def program_conf(
    path: str,
    *,
    instance,
    programs: list,
    directory: str,
    settings,
    autostart: bool,
) -> File:
    """One instance's program file under ``etc/supervisor.d/``: a group named after the
    instance, with one program per process type.

    ``programs`` holds one dict per process: ``type`` (its name in the group),
    ``program`` (its section name, unique in the home), ``command`` (argv),
    ``log_file``, ``stop_signal`` (a signal's name, sent to the main process alone)
    and ``stop_timeout`` (seconds before its whole process group is killed).
    """
    return File(
        path,
        render(
            "program.conf.j2",
            instance=instance,
            programs=programs,
            directory=directory,
            s=settings,
            autostart=autostart,
        ),
    )


def service_program(path: str, *, service, programs: list, directory: str, settings,
                    stop_timeout: int) -> File:
    """A backing service's program file under ``etc/supervisor.d/``: a group named after
    the service (``svc.APP.KIND``), one program per dict of ``programs`` (``name``,
    ``program``, ``command``, ``log_file``, ``priority``), started at boot."""
    return File(path, render("service.program.conf.j2", service=service, programs=programs,
                             directory=directory, s=settings, stop_timeout=stop_timeout))


def nginx_conf(path: str, *, home: str, prefix: str, log_dir: str, user, drain_timeout: int,
               sites: dict) -> File:
    """The home's own ``etc/nginx/nginx.conf``: the server blocks of the routed apps.

    ``sites`` is the context of their blocks (:func:`sarge.frontend.sites.context`).
    """
    return File(path, render("nginx.conf.j2", home=home, prefix=prefix, log_dir=log_dir,
                             user=user, drain_timeout=drain_timeout, **sites))


def nginx_sites(path: str, *, sites: dict) -> File:
    """The server blocks alone, for a system nginx to include (``etc/nginx/sites.conf``)."""
    return File(path, render("nginx-sites.conf.j2", **sites))


def nginx_program(path: str, *, command: list, log_file: str, drain_timeout: int) -> File:
    """The supervisord program that runs the home's nginx."""
    return File(path, render("nginx.program.conf.j2", command=command, log_file=log_file,
                             drain_timeout=drain_timeout))


def logrotate(*, home: str, log_dir: str, supervisord_pid: str, nginx_pid: str) -> str:
    """A logrotate snippet for the home's logs (``sarge HOME init --logrotate``)."""
    return render("logrotate.j2", home=home, log_dir=log_dir, supervisord_pid=supervisord_pid,
                  nginx_pid=nginx_pid)


def wrapper(path: str, *, home: str, argv: list) -> File:
    """An executable ``bin/`` shortcut that runs ``argv`` followed by its own arguments."""
    return File(path, render("wrapper.sh.j2", home=home, argv=argv), mode=0o755)
