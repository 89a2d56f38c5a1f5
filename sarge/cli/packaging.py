"""The commands that need no home: ``sarge validate SOURCE`` and ``sarge package SOURCE
-o FILE`` (:mod:`sarge.package`), for a developer's machine or CI. :data:`tools` is their
group; :class:`~.group.Sarge` hands it a command line whose first word names one."""

from __future__ import annotations

import click

from ..errors import NotDeployable, UsageError
from .output import echo, echo_json, note
from .version import print_version


def _pip_arg(command):
    return click.option(
        "--pip-arg", "pip_args", multiple=True, metavar="ARG",
        help="An argument for pip (repeat it): --pip-arg=--no-index "
             "--pip-arg=--find-links=DIR installs from a wheel folder only.")(command)


@click.group("sarge", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=print_version,
              help="Print the versions of sarge, supervisor and nginx, and exit.")
def tools():
    """Check and package an app before it reaches a server: no home needed."""


@tools.command()
@click.argument("source", metavar="SOURCE")
@click.option("--strict", is_flag=True, help="Unpinned requirements are errors, not warnings.")
@click.option("--deep", is_flag=True,
              help="Also import the web entry point and run the build and release steps "
                   "in a throwaway virtualenv, against a scratch data folder (installs the "
                   "requirements: slow).")
@_pip_arg
@click.option("-e", "--env", "env", multiple=True, metavar="NAME=VALUE",
              help="A variable for --deep's steps and import (repeat it): what `sarge "
                   "HOME config` gives the app on the server.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def validate(source, strict, deep, pip_args, env, as_json):
    """Report every problem of SOURCE (a folder or a .tar, .tar.gz or .tgz archive) that
    would stop or spoil a deploy, each as FILE:LINE: SEVERITY: what to do.

    \b
    Errors: a Procfile that does not parse or has no web (nor an executable
    server); a web server that does not listen on $PORT; a requirements.txt
    line that is not PEP 508; absolute paths in Django settings or a Flask
    config; a runtime.txt Python this machine lacks; a link out of the app;
    an archive whose files differ from its sarge-manifest.json; with --deep,
    an entry point that does not import or a build or release step that fails.
    Warnings: unpinned requirements (errors with --strict); files that should
    not ship (.git/, __pycache__, *.pyc, .env, db.sqlite3, .venv/).
    Exit status 0 when SOURCE is deployable (warnings only), 1 when not.
    """
    from ..package import deployable
    from ..package import validate as core_validate

    found = core_validate(source, strict=strict, deep=deep, pip_args=pip_args,
                          env=_assignments(env), progress=lambda message: note(f"  {message}"))
    ok = deployable(found)
    if as_json:
        echo_json({"source": source, "deployable": ok,
                   "findings": [f.to_dict() for f in found]})
    else:
        for finding in found:
            echo(str(finding))
        errors = sum(f.error for f in found)
        note(f"{source}: {'deployable' if ok else 'not deployable'} ({errors} error(s), "
             f"{len(found) - errors} warning(s))")
    return 0 if ok else 1


@tools.command()
@click.argument("source", metavar="SOURCE")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="The archive to write: app-VERSION.tar.gz.")
@click.option("--wheels", is_flag=True,
              help="Add a wheelhouse of every requirement (pip wheel): a deploy of the "
                   "archive then installs from it alone, without an index.")
@click.option("--strict", is_flag=True, help="Unpinned requirements are errors.")
@_pip_arg
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def package(source, output, wheels, strict, pip_args, as_json):
    """Validate SOURCE, then write it as a reproducible archive with a manifest.

    \b
    Left out: .git/, what git ignores (in a git work tree) and what .sargeignore
    names (gitignore syntax). The manifest, sarge-manifest.json, holds the
    sha256 of every file, the git revision and whether the work tree was dirty,
    the Procfile's commands, the requirements' sha256 and sarge's version; a
    deploy of the archive checks every file against it. The same tree gives the
    same bytes. Prints the archive's sha256 on stdout; refused, with nothing
    written, when validate finds an error (they are listed on stderr).
    """
    from ..package import package as core_package

    try:
        done = core_package(source, output, wheels=wheels, strict=strict, pip_args=pip_args,
                            progress=lambda message: note(f"  {message}"))
    except NotDeployable as exc:
        for finding in exc.findings:
            note(str(finding))
        raise
    if as_json:
        echo_json(done)
        return
    for finding in done["findings"]:
        note(f"{finding['file'] or '.'}{':' + str(finding['line']) if finding['line'] else ''}"
             f": warning: {finding['message']}")
    revision = done["revision"]
    note(f"{done['archive']}: {done['files']} files"
         + (f", {len(done['wheels'])} wheels" if wheels else "")
         + (f", git {revision['git'][:12]}{' (dirty)' if revision['dirty'] else ''}"
            if revision else ""))
    echo(done["sha256"])


def _assignments(values) -> dict:
    found = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"invalid --env {value!r}: give NAME=VALUE")
        found[name] = text
    return found


COMMANDS = (validate, package)
