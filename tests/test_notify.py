"""Notifications, for real: an SMTP server (aiosmtpd) and an HTTP receiver started here on
127.0.0.1, and a real command; the deploys are the fast tier's (fake supervisord and
nginx), since what is tested is what sarge sends, when, and what a failure to send does."""

import hashlib
import hmac
import http.server
import json
import os
import threading
import time

import pytest

from sarge.deploy.journaled import journal_of
from sarge.errors import DeployError

from .conftest import port_base
from .fakes import Rig
from .test_deploy_fast import LISTEN, deploy

pytestmark = pytest.mark.fast

SMTP_PORT = port_base() + 970
HTTP_PORT = port_base() + 971
SECRET = "s3cret-for-the-hook"


class Mails:
    """A real SMTP server (aiosmtpd's) keeping what it is sent."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.received = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.received.append(envelope)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=SMTP_PORT)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def messages(self):
        import email

        return [email.message_from_bytes(e.content) for e in self.received]


class Hooks(http.server.ThreadingHTTPServer):
    """A real HTTP server keeping each POST (headers, body); answers ``status``."""

    def __init__(self, status=204):
        self.posts, self.status = [], status
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", HTTP_PORT), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "hook.secret"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


def notifying(tmp_path_factory, secret, command, on='["failure", "success"]'):
    return Rig(tmp_path_factory.mktemp("n") / "home", settings={
        "email = []": 'email = ["ops@example.com", "dev@example.com"]',
        "webhook = []": f'webhook = ["http://127.0.0.1:{HTTP_PORT}/hooks/T0KEN/x"]',
        'command = ""': f"command = {json.dumps(command)}",
        'on = ["failure", "success"]': f"on = {on}",
        "smtp_port = 25": f"smtp_port = {SMTP_PORT}",
        'smtp_host = "localhost"': 'smtp_host = "127.0.0.1"',
        'webhook_secret_file = ""': f"webhook_secret_file = {json.dumps(str(secret))}",
        "timeout = 5": "timeout = 2"})


def test_a_deploy_and_a_failed_one_are_told_on_every_channel(tmp_path_factory, tmp_path,
                                                             secret, source):
    told = tmp_path / "told"
    command = f"cat > {told}.$SARGE_OUTCOME; echo $SARGE_APP $SARGE_STEP >> {told}.env"
    rig = notifying(tmp_path_factory, secret, command)
    try:
        with Mails() as mails, Hooks() as hooks:
            first = deploy(rig, source, listen=LISTEN)
            (source / "Procfile").write_text("no procfile line\n")
            with pytest.raises(DeployError):
                deploy(rig, source, version=2)
        ok, failed = journal_of(rig.home).records()
        mail = mails.messages()
        assert [m["To"] for m in mail] == ["ops@example.com", "dev@example.com"] * 2
        assert mail[0]["Subject"].startswith("sarge: deploy of web on ")
        assert mail[0]["Subject"].endswith(": ok")
        assert f"serving now: {first.id}" in mail[0].get_payload()
        assert "steps:" in mail[0].get_payload() and "health check" in mail[0].get_payload()
        assert "FAILED at step 'environment'" in mail[2]["Subject"]
        assert "Procfile line 1" in mail[2].get_payload()
        assert f"serving now: {first.id}" in mail[2].get_payload()  # the old one serves on

        (head, body), (_, body2) = hooks.posts
        assert json.loads(body) == ok and json.loads(body2) == failed
        assert head["X-Sarge-Signature"] == "sha256=" + hmac.new(
            SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert json.loads((tmp_path / "told.ok").read_text()) == ok
        assert json.loads((tmp_path / "told.failed").read_text()) == failed
        assert (tmp_path / "told.env").read_text() == "web\nweb environment\n"
        assert not os.listdir(rig.home.outbox_dir) if os.path.isdir(rig.home.outbox_dir) \
            else True
    finally:
        rig.close()


def test_what_cannot_be_sent_never_fails_the_deploy_and_is_sent_later(tmp_path_factory,
                                                                      secret, source):
    rig = notifying(tmp_path_factory, secret, "exit 3", on='["success"]')
    try:
        start = time.monotonic()
        first = deploy(rig, source, listen=LISTEN)  # no SMTP, no HTTP server: refused
        assert time.monotonic() - start < 10
        records = journal_of(rig.home).records()
        assert [r["action"] for r in records] == ["deploy", "notify", "notify", "notify",
                                                 "notify"]
        notes = records[1:]
        assert {(n["channel"], n["outcome"], n["of"]) for n in notes} == {
            ("email", "failed", 1), ("webhook", "failed", 1), ("command", "failed", 1)}
        hook = [n for n in notes if n["channel"] == "webhook"][0]
        assert hook["target"] == "http://127.0.0.1:%d/..." % HTTP_PORT  # not the token path
        assert "T0KEN" not in open(rig.home.history_path).read()
        assert [n["reason"] for n in notes if n["channel"] == "command"] == [
            "`exit` exited 3"]  # the command's first word only: the rest may hold a token
        assert len(os.listdir(rig.home.outbox_dir)) == 4
        assert oct(os.stat(rig.home.outbox_dir).st_mode & 0o777) == "0o700"

        with Mails() as mails, Hooks() as hooks:
            second = deploy(rig, source, version=2)
        # the first deploy's, retried first, then the second's
        assert [m["Subject"].endswith(": ok") for m in mails.messages()] == [True] * 4
        assert [json.loads(b)["to"] for _, b in hooks.posts] == [first.id, second.id]
        left = sorted(os.listdir(rig.home.outbox_dir))
        assert len(left) == 2 and all("-command-" in name for name in left)  # exit 3 again
        with pytest.raises(DeployError):
            rig.deployer().rollback("nothing")  # refused: not told (on = ["success"])
    finally:
        rig.close()


def test_a_secret_others_can_read_is_refused_and_the_deploy_goes_on(tmp_path_factory,
                                                                    secret, source):
    secret.chmod(0o644)
    rig = notifying(tmp_path_factory, secret, "")
    try:
        with Mails() as mails, Hooks() as hooks:
            deploy(rig, source, listen=LISTEN)
        assert hooks.posts == [] and len(mails.received) == 2
        (note,) = [r for r in journal_of(rig.home).records() if r["action"] == "notify"]
        assert "must be mode 0600" in note["reason"]
    finally:
        rig.close()


class Garbage:
    """A TCP server answering every connection with what no HTTP client can read."""

    def __init__(self):
        import socket

        self.sock = socket.create_server(("127.0.0.1", HTTP_PORT))
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        import socket

        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(): close alone does not
        self.sock.close()
        self.thread.join(5)


# A webhook answering garbage raised BadStatusLine out of every channel: the command was
# never run, nothing was kept to send again, nothing recorded (review).
def test_a_webhook_that_answers_garbage_fails_alone(tmp_path_factory, tmp_path, secret,
                                                    source):
    told = tmp_path / "told"
    rig = notifying(tmp_path_factory, secret, f"cat > {told}")
    try:
        with Mails() as mails, Garbage():
            deploy(rig, source, listen=LISTEN)
        assert len(mails.received) == 2 and told.exists()  # the other channels went out
        (note,) = [r for r in journal_of(rig.home).records() if r["action"] == "notify"]
        assert note["channel"] == "webhook" and "BadStatusLine" in note["reason"]
        assert len(os.listdir(rig.home.outbox_dir)) == 1
        with Mails(), Hooks() as hooks:  # retried with the next deploy, and delivered
            deploy(rig, source, version=2)
        assert [json.loads(b)["seq"] for _, b in hooks.posts] == [1, 3]
        assert os.listdir(rig.home.outbox_dir) == []
    finally:
        rig.close()


def test_a_watch_rollback_is_told(tmp_path_factory, secret, source):
    rig = notifying(tmp_path_factory, secret, "")
    try:
        with Mails() as mails, Hooks():
            first = deploy(rig, source, listen=LISTEN)

            def dies(seconds):
                instance_id = rig.deployer().state("web").current
                rig.supervisor.exit(f"{instance_id}:web", 1)
            with pytest.raises(DeployError):
                rig.deployer(sleep=dies).deploy(str(source), "web", watch=10)
        mail = mails.messages()[-1]
        assert "FAILED at step 'watch'" in mail["Subject"]
        body = mail.get_payload()
        assert "its web process exited" in body and f"serving now: {first.id}" in body
        assert "switch back" in body  # the time line of steps
    finally:
        rig.close()
