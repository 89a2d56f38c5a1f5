"""The commands an instance runs: its processes (what the launcher execs), ``sarge HOME
run``, the release step; as the app's user, in its folder, with its environment.

A :class:`Command` is a value; :func:`execute` replaces this process with one.
The functions here take the paths (a :class:`~sarge.layout.Layout`), the settings
and an instance, never a whole home, so the launcher builds one with no more.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal

from . import ownership, privileges, terminal, users
from .environ import environment
from .errors import SettingsError, UsageError


def module_argv(python: str, module: str, *args) -> list:
    """The command line that runs sarge's (or supervisor's) ``module`` with ``python``,
    isolated (``-I``): neither the working folder nor ``PYTHON*`` variables reach
    ``sys.path``, so an app's ``secrets.py`` (or ``json.py``, or a ``sarge/`` folder)
    in the folder it starts from is never imported by a process that runs as root."""
    return [python, "-I", "-m", module, *map(str, args)]


@dataclasses.dataclass(frozen=True)
class Command:
    """A program to exec: its argv, environment and working directory; the user it runs
    as (a :class:`~sarge.users.RunAs`, None: sarge's own) and the folders, with their
    modes, that user must own first (the app's data and runtime folders)."""

    argv: list
    env: dict
    cwd: str
    user: object = None
    folders: tuple = ()  # (path, mode, gid or None)
    umask: int | None = None

    def prepare(self) -> None:
        """Create the command's folders and give them to its user, who must also be able
        to read the folder it runs in (its instance's code)."""
        try:
            for path, mode, gid in self.folders:
                ownership.give(path, self.user, mode, gid)
            ownership.share_code(self.cwd, self.user, unless_shared=True)
        except OSError as exc:
            raise SettingsError(f"cannot prepare {exc.filename}: {exc.strerror}") from exc

    def popen_kwargs(self) -> dict:
        """subprocess arguments that run the command as its user, in its folder."""
        extra = self.user.popen_kwargs() if self.user is not None else {}
        return {"env": self.env, "cwd": self.cwd, **extra}


def execute(command: Command, relay: bool = False):
    """Replace this process with ``command``: its folders prepared, in its folder, as its
    user. Raises :class:`SettingsError` when it cannot (prepare, run).

    With ``relay`` (``sarge run``), a command that switches users while a standard
    stream is a terminal runs on a terminal of its own (:mod:`sarge.terminal`) instead,
    and its exit status is returned: root's terminal never reaches the app's user.
    """
    command.prepare()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; the command must not
    if relay and users.switches(command.user) and terminal.needs_pty():
        def child():  # pragma: no cover - runs in the forked child, then execs
            try:
                os.chdir(command.cwd)
                privileges.become(command.user, keep_terminal=True)
                os.execvpe(command.argv[0], command.argv, command.env)
            except OSError as exc:
                os.write(2, f"sarge: cannot run {command.argv[0]}: {exc.strerror}\n".encode())
        return terminal.run(child)
    try:
        os.chdir(command.cwd)
        if command.umask is not None:
            os.umask(command.umask)
        privileges.become(command.user)
        os.execvpe(command.argv[0], command.argv, command.env)
    except OSError as exc:
        raise SettingsError(f"cannot run {command.argv[0]}: {exc.strerror}") from exc


def run_as(layout, settings, application_name: str):
    """The user the app's processes run as (:func:`sarge.users.resolve`, which also refuses
    one not apart from nginx's workers and the other apps): None when sarge does not run
    as root, and so cannot switch."""
    return users.resolve(settings.user_for(application_name), f"the app {application_name}",
                         layout.path, layout.settings_path,
                         apart_from=users.others(settings, application_name))


#: Outside quotes, what makes a command line more than one simple command for the shell
#: (lists, pipelines, subshells, redirections, command substitution, several lines).
_COMPOUND = set(";&|()<>`\n")
#: First words the shell runs itself, which ``exec`` cannot replace it with.
_SHELL_WORDS = {"!", "{", "}", "if", "then", "else", "elif", "fi", "case", "esac", "for",
                "while", "until", "do", "done", "in", "function", "select", ".", ":",
                "alias", "break", "cd", "continue", "eval", "exec", "exit", "export",
                "getopts", "read", "readonly", "return", "set", "shift", "times", "trap",
                "ulimit", "umask", "unalias", "unset", "wait"}
_ASSIGNMENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def shell_words(command: str):
    """The words of ``command`` as written (quotes kept), when it is one simple command
    of the POSIX shell; None when it is anything more (``a && b``, ``a | b``, ``(a)``,
    ``a > log``, ``$(a)``, a backquote, several lines) or its quotes do not close."""
    words, word, quote, i = [], "", None, 0
    while i < len(command):
        char = command[i]
        if quote == "'":
            quote = None if char == "'" else quote
        elif char == "\\":
            word += command[i:i + 2]
            i += 2
            continue
        elif char == "`" or command.startswith("$(", i):
            return None
        elif quote == '"':
            quote = None if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char in _COMPOUND:
            return None
        elif char == "#" and not word:
            break  # a comment, to the end of the line
        elif char in " \t":
            if word:
                words.append(word)
            word = ""
            i += 1
            continue
        word += char
        i += 1
    if quote is not None:
        return None
    return words + [word] if word else words


def exec_form(command: str) -> str:
    """``command`` (a Procfile line, the release step) as ``/bin/sh -c`` should run it:
    a simple command gets ``exec`` before its program (after any leading ``NAME=value``
    assignments, which the shell then exports to it), so that the shell replaces itself
    with the program and what supervisord watches and signals is the app's own process
    (Debian's dash does not exec a last command by itself). Anything more is left as it
    is: the shell stays its parent, and ``exec`` before its last command is the app's to
    write."""
    words = shell_words(command)
    if not words:
        return command
    first = next((n for n, w in enumerate(words) if not _ASSIGNMENT_RE.match(w)), None)
    if first is None or words[first] in _SHELL_WORDS:
        return command
    return " ".join(words[:first] + ["exec"] + words[first:])


def process_command(layout, settings, instance, process: str = "web") -> Command:
    """What the launcher execs for one process of ``instance``: the folder's ``server``,
    or the Procfile's line run by ``/bin/sh -c`` (in its :func:`exec_form`)."""
    if process not in instance.processes:
        raise UsageError(f"{instance.id} has no process {process!r}")
    command = instance.processes[process]
    argv = ["./server"] if command is None else ["/bin/sh", "-c", exec_form(command)]
    command = _command(layout, settings, instance, argv, process)
    if instance.unix_socket and process == "web":
        command = dataclasses.replace(command, umask=0o007)
    return command


def run_command(layout, settings, instance, argv=None, env=None) -> Command:
    """``argv`` (default: the user's shell) in the instance's folder and environment, as
    the app's user; ``env`` ({NAME: VALUE}, ``run -e``) is set last, over every other
    variable."""
    if not argv:
        argv = [os.environ.get("SHELL") or "/bin/sh"]
    command = _command(layout, settings, instance, list(argv))
    if env:
        command = dataclasses.replace(command, env={**command.env, **env})
    return command


def _command(layout, settings, instance, argv, process="web") -> Command:
    user = run_as(layout, settings, instance.application_name)
    folders = [(layout.data_dir(instance.application_name), 0o700, None),
               (layout.runtime_dir(instance.id), 0o700, None)]
    if instance.unix_socket:
        # setgid: the socket the app makes there joins the folder's group, nginx's
        # workers', and the web process's umask (process_command) lets that group in
        group = socket_group(layout, settings)
        folders.append((os.path.dirname(layout.app_socket(instance.id)),
                        0o2750 if group is not None else 0o700, group))
    return Command(argv, environment(layout, instance, process, user=user),
                   layout.instance_dir(instance.id), user=user, folders=tuple(folders))


def socket_group(layout, settings):
    """The group that may reach an instance's unix socket besides its user: nginx's
    workers' (their user's group: ``[users] frontend``, else nobody's for sarge's own
    nginx). None when sarge does not run as root (everything runs as one user)."""
    if os.geteuid() != 0:
        return None
    named = settings.frontend_user or ("nobody" if settings.frontend == "nginx" else "")
    if not named:
        raise SettingsError(
            f"{layout.settings_path}: an app listens on $SARGE_SOCKET, which nginx's workers "
            "must reach: set [users] frontend to the user the machine's nginx workers run "
            "as (www-data, say)")
    return users.lookup(named, layout.settings_path).gid
