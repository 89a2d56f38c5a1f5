"""Telling people what a deploy did: email, a webhook, a command (``[notify]``).

Each record of the deploy history (:mod:`sarge.journal`) that ``[notify] on`` asks
for (``success``, ``failure``) goes to every channel ``etc/sarge.toml`` names:

- ``email``: a plain-text message through ``smtp_host:smtp_port`` (STARTTLS when
  ``smtp_starttls``; a login read from ``smtp_login_file``, ``user:password`` in a
  file only root may read);
- ``webhook``: a JSON POST of the record, signed with ``X-Sarge-Signature:
  sha256=HMAC`` of the body when ``webhook_secret_file`` names a secret;
- ``command``: run with the record as JSON on its stdin and ``SARGE_*`` variables.

Sending never fails a deploy nor holds it for long: each channel has ``timeout``
seconds; what cannot be delivered is kept in ``var/outbox`` and tried again before
the next notification is sent (:meth:`Notifier.retry`), at most :data:`MAX_ATTEMPTS`
times. The caller records what failed in the history.
"""

from __future__ import annotations

import contextlib
import email.message
import hashlib
import hmac
import json
import os
import smtplib
import socket
import ssl
import stat
import subprocess
import urllib.parse
import urllib.request

from .errors import SettingsError

#: How often an undelivered notification is tried in all before it is given up.
MAX_ATTEMPTS = 5
#: How many of the outbox's are tried again with each new notification: at most that
#: many timeouts more for the command that sends it.
RETRIES_AT_ONCE = 4


class Notifier:
    """Sends the notifications ``settings`` ask for; ``outbox`` is the folder of those
    not delivered yet. ``smtp``, ``urlopen`` and ``run`` are :class:`smtplib.SMTP`,
    :func:`urllib.request.urlopen` and :func:`subprocess.run`."""

    def __init__(self, settings, outbox: str, *, host=None, smtp=smtplib.SMTP,
                 urlopen=urllib.request.urlopen, run=subprocess.run):
        self.settings = settings
        self.outbox = outbox
        self.host = host or socket.gethostname()
        self.smtp = smtp
        self.urlopen = urlopen
        self.run = run

    def channels(self) -> list:
        s = self.settings
        return ([("email", address) for address in s.notify_email]
                + [("webhook", url) for url in s.notify_webhook]
                + ([("command", s.notify_command)] if s.notify_command else []))

    def wanted(self, record: dict) -> bool:
        kind = "success" if record.get("outcome") == "ok" else "failure"
        return kind in self.settings.notify_on and bool(self.channels())

    def notify(self, record: dict) -> list:
        """Send ``record`` on every channel; return ``(channel, target, why)`` for each that
        failed (kept in the outbox to be tried again)."""
        if not self.wanted(record):
            return []
        failed = []
        for channel, target in self.channels():
            why = self._send(channel, target, record)
            if why is not None:
                self._keep(channel, target, record, 1, why)
                failed.append((channel, target, why))
        return failed

    def retry(self) -> list:
        """Try again what the outbox holds; return ``(channel, target, why, seq, given_up)``
        for each that failed again (``seq``: the history record it tells of)."""
        failed = []
        names = sorted(os.listdir(self.outbox)) if os.path.isdir(self.outbox) else []
        for name in names[:RETRIES_AT_ONCE]:  # the oldest first; a few at a time
            path = os.path.join(self.outbox, name)
            try:
                with open(path, encoding="utf-8") as f:
                    entry = json.load(f)
                channel, target, record = entry["channel"], entry["target"], entry["record"]
                attempts = int(entry["attempts"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not one of ours, or torn: left for the operator
            os.unlink(path)  # whatever comes of it: kept again below when it fails
            why = self._send(channel, target, record)
            if why is not None:
                given_up = attempts + 1 >= MAX_ATTEMPTS
                if not given_up:
                    self._keep(channel, target, record, attempts + 1, why)
                failed.append((channel, target, why, record.get("seq"), given_up))
        return failed

    # -- the channels ------------------------------------------------------------------------

    def _send(self, channel, target, record):
        """None when delivered, else why not (one line)."""
        try:
            {"email": self._email, "webhook": self._webhook,
             "command": self._command}[channel](target, record)
        except Exception as exc:  # noqa: BLE001 - any peer's answer: one channel failed
            text = " ".join(str(getattr(exc, "strerror", None) or exc).split())
            if isinstance(exc, (OSError, SettingsError)) and text:
                return text
            return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return None

    def _email(self, address, record) -> None:
        s = self.settings
        subject, body = message(record, self.host)
        mail = email.message.EmailMessage()
        mail["Subject"] = subject
        mail["From"] = s.notify_from or f"sarge@{self.host}"
        mail["To"] = address
        mail.set_content(body)
        with self.smtp(s.notify_smtp_host, s.notify_smtp_port,
                       timeout=s.notify_timeout) as server:
            if s.notify_smtp_starttls:
                server.starttls(context=ssl.create_default_context())
            if s.notify_smtp_login_file:
                user, _, password = _secret(s.notify_smtp_login_file).partition(":")
                server.login(user, password)
            server.send_message(mail)

    def _webhook(self, url, record) -> None:
        body = json.dumps(record, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "sarge"}
        if self.settings.notify_webhook_secret_file:
            secret = _secret(self.settings.notify_webhook_secret_file).encode("utf-8")
            headers["X-Sarge-Signature"] = "sha256=" + hmac.new(secret, body,
                                                                hashlib.sha256).hexdigest()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with self.urlopen(request, timeout=self.settings.notify_timeout) as response:
            if not 200 <= response.status < 300:  # the host alone: the path may be secret
                raise OSError(0, f"{urllib.parse.urlsplit(url).hostname} answered "
                              f"{response.status}")

    def _command(self, command, record) -> None:
        env = {**os.environ, **{f"SARGE_{k.upper()}": str(record.get(k) or "")
                                for k in ("action", "app", "outcome", "step", "from", "to",
                                          "reason", "seq")}}
        result = self.run(["/bin/sh", "-c", command], input=json.dumps(record), text=True,
                          env=env, capture_output=True, timeout=self.settings.notify_timeout)
        if result.returncode != 0:  # its first word alone: the rest may hold a token
            raise OSError(0, f"`{(command.split() or [''])[0]}` exited {result.returncode}")

    def _keep(self, channel, target, record, attempts, why) -> None:
        os.makedirs(self.outbox, 0o700, exist_ok=True)
        tag = hashlib.sha256(target.encode("utf-8")).hexdigest()[:8]
        name = f"{record.get('seq', 0):08d}-{channel}-{tag}.json"
        text = json.dumps({"channel": channel, "target": target, "record": record,
                           "attempts": attempts, "last_error": why})
        path = os.path.join(self.outbox, name)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


def _secret(path: str) -> str:
    """The first line of the file at ``path``, which only its owner (root, or sarge's
    user) may read: a secret in a file others can read is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc
    with contextlib.closing(os.fdopen(fd, encoding="utf-8")) as f:
        st = os.fstat(f.fileno())
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or st.st_uid not in (0, os.geteuid()):
            raise SettingsError(f"{path} must be mode 0600 and root's (it holds a secret)")
        return (f.readline() or "").strip()


def message(record: dict, host: str):
    """(subject, body) telling what ``record`` says happened, for a person."""
    app, action, outcome = record.get("app"), record.get("action"), record.get("outcome")
    if outcome == "ok":
        subject = f"sarge: {action} of {app} on {host}: ok"
    elif outcome == "refused":
        subject = f"sarge: {action} of {app} on {host} refused"
    else:
        where = f" at step '{record['step']}'" if record.get("step") else ""
        subject = f"sarge: {action} of {app} on {host} FAILED{where}"
    lines = [f"{action} of {app} on {host}: {outcome}"
             + (f" at step '{record['step']}'" if record.get("step") else ""),
             f"when: {record.get('time')}  by: {record.get('user')}"
             + (f" (sudo {record['sudo_user']})" if record.get("sudo_user") else "")
             + (f" from {record['client']}" if record.get("client") else "")]
    if record.get("source"):
        lines.append(f"source: {record['source']}")
    serving = record.get("to")
    lines.append(f"serving now: {serving}" if serving else f"serving now: nothing for {app}")
    if record.get("from") != serving:
        lines.append(f"serving before: {record.get('from') or 'nothing'}")
    if record.get("reason"):
        lines += ["", "why:", "  " + record["reason"]]
    for extra in record.get("details", []):
        lines.append("  " + extra)
    if record.get("steps"):
        lines += ["", "steps:"] + [f"  {name:<14} {seconds:7.2f}s"
                                   for name, seconds in record["steps"]]
    lines += ["", f"history record {record.get('seq')}: sarge HOME history --show "
              f"{record.get('seq')}"]
    return subject, "\n".join(lines) + "\n"
