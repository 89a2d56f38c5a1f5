"""The shape of the code: imports point one way (no cycle between sarge's modules, nothing
imports the command line), and only the entry points print or exit."""

import ast
import functools
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sarge")


def modules() -> dict:
    """{dotted name: path} of every module of the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                found[rel[:-9] if rel.endswith(".__init__") else rel] = path
    return found


@functools.lru_cache(maxsize=None)
def parse(path: str) -> ast.Module:
    """The module at ``path``, parsed once a run (the tests only read the trees)."""
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read())


def imports(name: str, path: str, known) -> set:
    """The sarge modules ``name`` imports, at any depth of its code (lazy ones too)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    tree = parse(path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


@functools.lru_cache(maxsize=None)
def _graph() -> tuple:
    known = modules()
    return tuple((name, frozenset(imports(name, path, known))) for name, path in known.items())


def graph() -> dict:
    """Each sarge module and the sarge modules it imports."""
    return {name: set(deps) for name, deps in _graph()}


def command_line(name: str) -> bool:
    """Whether ``name`` is a command line: :mod:`sarge.cli` and its modules, and
    ``sarge-fleet``'s, :mod:`sarge.fleet.cli` (with ``python -m sarge.fleet``)."""
    return any(name == top or name.startswith(top + ".")
               for top in ("sarge.cli", "sarge.fleet.cli", "sarge.fleet.__main__"))


def fleet(name: str) -> bool:
    return name == "sarge.fleet" or name.startswith("sarge.fleet.")


def test_the_core_never_imports_the_fleet():
    """sarge.fleet is optional (Fabric): a server that only runs apps never loads it."""
    assert [m for m, deps in graph().items()
            if not fleet(m) and any(fleet(d) for d in deps)] == []


def test_the_fleet_uses_no_more_of_sarge_than_its_errors_and_printable():
    """sarge-fleet is a remote client: it drives sarge through the hosts' bin/sarge."""
    allowed = {"sarge.errors", "sarge.logs"}
    assert {m: sorted(d for d in deps if not fleet(d) and d not in allowed)
            for m, deps in graph().items() if fleet(m)
            and any(not fleet(d) and d not in allowed for d in deps)} == {}


def test_nothing_imports_the_command_line():
    assert [m for m, deps in graph().items()
            if any(command_line(d) for d in deps) and not command_line(m)
            and m not in ENTRY_POINTS] == []


def test_imports_have_no_cycle():
    edges = graph()
    # a package's __init__ re-exports its own modules: that is not a cycle
    for name in edges:
        edges[name] = {d for d in edges[name] if not d.startswith(name + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


ENTRY_POINTS = {"sarge.cli", "sarge.__main__", "sarge.launch", "sarge.crashwatch",
                "sarge.supervisord.launch", "sarge.supervisord.crashwatch"}


@pytest.mark.parametrize("name", sorted(m for m in modules()
                                        if m not in ENTRY_POINTS and not command_line(m)))
def test_the_core_never_prints_or_exits(name):
    tree = parse(modules()[name])
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else (
                f"{getattr(func.value, 'id', '')}.{func.attr}"
                if isinstance(func, ast.Attribute) else "")
            assert called not in ("print", "sys.exit", "exit", "click.echo"), \
                f"{name} line {node.lineno} calls {called}"


#: A module longer than this does more than one job: split it (see docs/development.rst).
MAX_LINES = 320


def test_no_module_is_too_long():
    lengths = {name: sum(1 for _ in open(path, encoding="utf-8"))
               for name, path in modules().items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
