"""Each change the :class:`~sarge.deploy.Deployer` makes, recorded in the deploy history
(:mod:`sarge.journal`): :func:`journaled` wraps its deploy, route, rollback, config and
undeploy. A record says who, which app, from which instance to which, the source
(path, SHA-256 or git revision), the Procfile's commands, the outcome (``ok``,
or ``failed`` at a step) with its reason, and each step's time.

What is refused before any step (bad input, an address another program holds,
another deploy running, nothing to roll back to) makes no record: it changes
nothing. A call made inside another (the deploy of ``config --deploy``) is part of
the outer one's record. Writing the record never fails the change itself: a journal
that cannot be written is said in ``var/log/sarge.log``.
"""

from __future__ import annotations

import functools
import time

from .. import journal
from ..errors import DeployError, SargeError
from ..instance import check_app_name, utcnow


def journaled(action: str, *, app_arg: int = 0, source_arg=None):
    """Record each call of the decorated Deployer method as ``action``: its app is the
    positional argument ``app_arg`` (or the keyword ``app``), its source ``source_arg``."""
    def wrap(method):
        @functools.wraps(method)
        def run(deployer, *args, **kwargs):
            app = kwargs.get("app", args[app_arg] if len(args) > app_arg else None)
            try:
                check_app_name(app)
            except SargeError:
                return method(deployer, *args, **kwargs)  # refused before it began: no record
            if getattr(deployer, "_journaling", False):
                return method(deployer, *args, **kwargs)
            source = args[source_arg] if source_arg is not None and len(args) > source_arg \
                else None
            deployer._journaling = True
            try:
                return _recorded(deployer, action, app, source, method, args, kwargs)
            finally:
                deployer._journaling = False
        return run
    return wrap


def _recorded(deployer, action, app, source, method, args, kwargs):
    steps = deployer.steps
    record = {"action": action, "app": app, **journal.who()}
    record["from"] = _current(deployer, app)
    if source is not None:
        record["source"] = str(source)
    if action == "config":  # the names only: values may be secrets
        assignments = kwargs.get("assignments", args[1] if len(args) > 1 else ())
        unset = kwargs.get("unset", args[2] if len(args) > 2 else ())
        record["keys"] = sorted({a.partition("=")[0] for a in assignments} | set(unset))
    steps.done = []
    start = time.monotonic()
    try:
        result = method(deployer, *args, **kwargs)
    except BaseException as exc:
        if _nothing_done(exc, steps):
            raise  # refused before anything was done: it changed nothing, nor does this
        record.update(_outcome(exc))
        _finish(deployer, record, start, None)
        raise
    record["outcome"] = "ok"
    _finish(deployer, record, start, result)
    return result


def _nothing_done(exc, steps) -> bool:
    """A refusal before any step (bad input: a name, an address, an id; an address
    something else holds; another deploy running; nothing to roll back to), which must
    change nothing, the history included. What failed at a step, or after some were
    done, is recorded."""
    return (isinstance(exc, SargeError) and not steps.done
            and not (isinstance(exc, DeployError) and exc.step))


def _outcome(exc) -> dict:
    details = str(exc).splitlines()[1:21]  # a failed deploy's last log lines
    if isinstance(exc, DeployError) and exc.step:
        return {"outcome": "failed", "step": exc.step, "reason": _first_line(exc),
                **({"details": details} if details else {})}
    if isinstance(exc, SargeError):  # after some steps were done (undeploy left some)
        return {"outcome": "failed", "reason": _first_line(exc)}
    return {"outcome": "failed", "reason": f"{type(exc).__name__}: {_first_line(exc)}"}


def _first_line(exc) -> str:
    return (str(exc).splitlines() or [""])[0]


def _finish(deployer, record, start, result) -> None:
    """Complete ``record`` with what is true now, and append it."""
    home = deployer.home
    record["to"] = _current(deployer, record["app"])
    record["steps"] = [list(step) for step in deployer.steps.done]
    record["duration"] = round(time.monotonic() - start, 3)
    if record.get("source") is not None:
        record["source_identity"] = journal.source_identity(record["source"])
    if record["outcome"] == "ok" and record["to"]:
        try:
            current = home.get(record["to"])
            record["procfile"] = current.processes
            if current.revision:  # a packaged archive's (sarge-manifest.json)
                record["revision"] = current.revision
        except SargeError:
            pass
    if record["action"] == "undeploy" and isinstance(result, dict):  # what it removed
        record["removed"] = result  # (never a config's result: those are the values)
    try:
        record = journal_of(home).append(record)
    except OSError as exc:
        _say(home, "history-unwritten", f"{record['action']} {record['app']}: "
             f"{exc.strerror or exc}")
    _tell(deployer, record)


def _tell(deployer, record) -> None:
    """Send what ``record`` says to whoever ``[notify]`` names, after what is still in the
    outbox; record in the history each channel that failed. Never raises: the change
    is done, and its outcome is what the command reports."""
    home = deployer.home
    try:
        notifier = deployer.notifier
        failed = [(c, t, w, seq, given_up) for c, t, w, seq, given_up in notifier.retry()]
        failed += [(c, t, w, record.get("seq"), False) for c, t, w in notifier.notify(record)]
    except Exception as exc:  # noqa: BLE001 - a notification never fails the deploy
        _say(home, "notify-failed", f"{type(exc).__name__}: {exc}")
        return
    for channel, target, why, seq, given_up in failed:
        try:
            journal_of(home).append({
                "action": "notify", "app": record.get("app"),
                "outcome": "given up" if given_up else "failed", "of": seq,
                "channel": channel, "target": _shown(channel, target), "reason": why,
                "user": record.get("user")})
        except OSError:
            _say(home, "notify-failed", f"{channel}: {why}")


def _shown(channel, target) -> str:
    """What the history says of a channel's target: a webhook's scheme and host only (its
    path is often the secret, as a Slack hook's is), a command's first word."""
    if channel == "webhook":
        scheme, _, rest = target.partition("://")
        return f"{scheme}://{rest.split('/')[0].rpartition('@')[2]}/..."
    if channel == "command":
        return (target.split() or [""])[0]
    return target


def _say(home, action, detail) -> None:
    try:
        home.log_action(action, detail)
    except OSError:
        pass  # a home with no var/log at all: the change's own error is what counts


def _current(deployer, app):
    try:
        return deployer.state(app).current
    except SargeError:
        return None


def journal_of(layout) -> journal.Journal:
    """The deploy history of the home at ``layout``."""
    return journal.Journal(layout.history_path, layout.history_lock_path, utcnow)
