"""Absolute file paths in an app's settings (Engage's rule: none; a path on the
developer's machine does not exist on the server): in a Django settings module (the
one ``DJANGO_SETTINGS_MODULE`` names in ``manage.py``, ``wsgi.py`` or ``asgi.py``, and
any ``settings.py``, ``settings/*.py``, ``local_settings.py``), a Flask config file
(``config.py``, ``instance/config.py``) and what an app module gives ``app.config``.
Read with :mod:`ast`, never imported: a string constant that starts with ``/home/``,
``/Users/``, ``/srv/`` (and such) or ``~/`` or ``C:\\`` is reported with its line; a
value whose name ends with ``URL`` is a URL path (``STATIC_URL = "/static/"``)."""

from __future__ import annotations

import ast
import re

from .findings import error

_ABSOLUTE_RE = re.compile(r"(/(home|Users|root|srv|var|opt|tmp|mnt|data|usr|etc|media|app|"
                          r"workspace|private)(/|$)|~/|[A-Za-z]:\\)")
_MODULE_RE = re.compile(r"DJANGO_SETTINGS_MODULE['\"]\s*,\s*['\"]([A-Za-z_][\w.]*)['\"]")
_SETTINGS_NAMES = ("settings.py", "local_settings.py", "config.py", "default_settings.py")
_SKIP = {"node_modules", "venv", ".venv", "site-packages"}


def settings_files(tree) -> tuple:
    """(the settings and config files of the source, the other Python files)."""
    named = set()
    for entry in tree.files():
        if entry.path.rsplit("/", 1)[-1] in ("manage.py", "wsgi.py", "asgi.py"):
            found = _MODULE_RE.search(tree.text(entry.path) or "")
            if found:
                module = found.group(1).replace(".", "/")
                named.update((module + ".py", module + "/__init__.py"))
    python = [e.path for e in tree.files() if e.path.endswith(".py")
              and not _SKIP.intersection(e.path.split("/"))]
    settings, others = [], []
    for path in python:
        parts = path.split("/")
        is_settings = (path in named or parts[-1] in _SETTINGS_NAMES
                       or (len(parts) > 1 and parts[-2] == "settings")
                       or any(path.startswith(n[:-len("/__init__.py")] + "/")
                              for n in named if n.endswith("/__init__.py")))
        (settings if is_settings else others).append(path)
    return settings, others


def check(tree) -> list:
    """An error for each absolute path in the settings."""
    settings, others = settings_files(tree)
    found = []
    for path in settings:
        found += _scan(tree, path, whole=True)
    for path in others:
        text = tree.text(path) or ""
        if ".config" in text:
            found += _scan(tree, path, whole=False)
    return found


def _scan(tree, path, whole: bool) -> list:
    try:
        module = ast.parse(tree.text(path) or "", filename=path)
    except (SyntaxError, ValueError):
        return []  # validate does not judge the app's Python; --deep imports it
    found = []
    for node in ast.walk(module):
        for name, value in _assignments(node, whole):
            if name.upper().endswith(("URL", "URLS")):
                continue
            for constant in _strings(value):
                if _ABSOLUTE_RE.match(constant.value):
                    found.append(error(path, constant.lineno, _message(name, constant.value)))
    return found


def _assignments(node, whole: bool):
    """(name, value) of what ``node`` sets: a module's ``NAME = ...`` (``whole``), an
    ``app.config["KEY"] = ...``, a ``config.from_mapping(KEY=...)`` or ``update``."""
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if whole and isinstance(target, ast.Name):
                yield target.id, node.value
            elif isinstance(target, ast.Subscript) and _is_config(target.value):
                key = target.slice
                yield (key.value if isinstance(key, ast.Constant) and
                       isinstance(key.value, str) else "?"), node.value
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr in ("from_mapping", "update") and _is_config(node.func.value):
        for keyword in node.keywords:
            yield keyword.arg or "?", keyword.value


def _is_config(node) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "config") or (
        isinstance(node, ast.Name) and node.id == "config")


def _strings(value):
    """The string constants of ``value``, less those under a dict key ending with URL."""
    if isinstance(value, ast.Dict):
        for key, item in zip(value.keys, value.values):
            if isinstance(key, ast.Constant) and str(key.value).upper().endswith("URL"):
                continue
            yield from _strings(item)
        return
    for node in ast.walk(value):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def _message(name, value) -> str:
    shown = value if len(value) <= 60 else value[:57] + "..."
    return (f"{name} is the absolute path {shown!r}, which the server does not have: build "
            "it from the project's folder (Path(__file__).resolve().parent) or "
            "os.environ['SARGE_DATA_DIR'] (the app's data, kept across deploys)")
