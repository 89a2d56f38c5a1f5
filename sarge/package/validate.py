"""``sarge validate``: every problem of a source at once (:mod:`.findings`), from the
checks of :mod:`.checks`, :mod:`.requirements` and :mod:`.abspaths`; an archive's
``sarge-manifest.json`` is checked against its files; ``--deep`` (:mod:`.deep`) runs
the app in a throwaway virtualenv when nothing else is wrong."""

from __future__ import annotations

from ..errors import ManifestMismatch
from . import abspaths, checks, requirements
from .findings import deployable, error, ordered
from .manifest import NAME, differences, load
from .source import opened


def check_tree(tree, strict: bool = False) -> tuple:
    """(the findings of ``tree``, ordered; its Procfile's {type: command})."""
    found, processes = checks.procfile(tree)
    found += requirements.check(tree, strict)
    found += abspaths.check(tree)
    found += checks.runtime(tree)
    found += checks.unwanted(tree)
    found += checks.links(tree)
    if tree.kind == "tar" and tree.has(NAME):
        try:
            data = load(tree.root)
            found += [error(path, None, f"{what} since the archive was packaged ({NAME})")
                      for path, what in differences(tree.root, data)]
        except ManifestMismatch as exc:
            found.append(error(NAME, None, str(exc)))
    return ordered(found), processes


def validate(source: str, *, strict: bool = False, deep: bool = False, pip_args=(),
             env=None, progress=None) -> list:
    """The findings of ``source`` (a folder or an archive), ordered. With ``deep``, and
    no error found otherwise, its web entry point is imported and its build and release
    steps run in a throwaway virtualenv (:func:`.deep.run`); ``progress(message)`` is
    told of each of its stages; ``env`` ({NAME: VALUE}) is set for them (the app's
    settings, such as a secret key its settings module reads)."""
    with opened(source) as tree:
        found, processes = check_tree(tree, strict)
        if deep and deployable(found):
            from .deep import run

            found = ordered(found + run(tree, processes, pip_args=pip_args, env=env,
                                        progress=progress))
    return found
