"""An app's certificate: checked before nginx sees it, and copied into the home.

The operator gives the files they have (certbot's ``fullchain.pem`` and
``privkey.pem``, a company CA's). sarge refuses a file that is not a PEM
certificate or key, a key that is not the certificate's, and a certificate that
has expired, each by name, before anything changes. It then copies both into
``etc/tls/APP/`` under a name made of their content's digest (the key 0600, the
folder 0700): nginx reads its own copies, a renewal in place changes nothing
until ``sarge HOME tls APP --reload``, and a reload that fails leaves the copies
nginx was using where they were.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess

from ..errors import UsageError
from ..files import File, write_file


def _read(path: str, what: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20).decode("ascii")
    except OSError as exc:
        raise UsageError(f"--tls {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--tls {what} {path} is not a PEM file (it is not text)") from None


class _Encrypted(Exception):
    pass


def _encrypted():
    """The pass phrase callback: there is none to give (and never a prompt)."""
    raise _Encrypted()


def check(cert: str, key: str, run=subprocess.run) -> str:
    """Refuse what nginx could not serve (see the module's docstring); return the
    digest that names the pair's copies."""
    cert_bytes, key_bytes = _read(cert, "certificate"), _read(key, "key")
    if "-----BEGIN CERTIFICATE-----" not in cert_bytes:
        raise UsageError(f"--tls certificate {cert} is not a PEM certificate "
                         "(-----BEGIN CERTIFICATE-----)")
    if "PRIVATE KEY-----" not in key_bytes:
        raise UsageError(f"--tls key {key} is not a PEM private key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_encrypted)
    except _Encrypted:
        raise UsageError(f"--tls key {key} is encrypted, and nginx cannot ask for its pass "
                         f"phrase: give it decrypted (openssl pkey -in {key} -out NEW.key)") \
            from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise UsageError(f"--tls key {key} is not the key of the certificate {cert}") \
                from None
        raise UsageError(f"--tls {cert} and {key} cannot be used: {exc.reason or exc}") \
            from None
    except OSError as exc:
        raise UsageError(f"--tls {cert} and {key} cannot be used: "
                         f"{exc.strerror or exc}") from None
    try:
        result = run(["openssl", "x509", "-in", cert, "-noout", "-enddate", "-checkend", "0"],
                     capture_output=True, text=True)
    except OSError as exc:
        raise UsageError(f"openssl cannot run to check {cert} ({exc.strerror}): "
                         "apt-get install openssl") from None
    if result.returncode != 0:
        first = (result.stdout.strip().splitlines() or [""])[0]
        end = first.partition("=")[2] or "its date"
        raise UsageError(f"--tls certificate {cert} expired on {end}: renew it first")
    return hashlib.sha256(f"{cert_bytes}\0{key_bytes}".encode()).hexdigest()[:16]


def files(layout, app: str, digest: str) -> dict:
    """The paths of the copies of an app's pair."""
    folder = layout.tls_dir(app)
    return {"cert": os.path.join(folder, digest + ".crt"),
            "key": os.path.join(folder, digest + ".key")}


def install(layout, app: str, cert: str, key: str, keep=()) -> str:
    """Check the pair (:func:`check`), copy it into the home; return its digest. Copies of
    other pairs go, but for the digests ``keep`` (the pair nginx serves now)."""
    digest = check(cert, key)
    layout.make_later("etc/tls")
    folder = layout.tls_dir(app)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    paths = files(layout, app, digest)
    write_file(File(paths["key"], _read(key, "key"), mode=0o600))
    write_file(File(paths["cert"], _read(cert, "certificate"), mode=0o644))
    wanted = {digest, *keep}
    for name in os.listdir(folder):
        if name.rpartition(".")[0] not in wanted:
            os.unlink(os.path.join(folder, name))
    return digest


def discard(layout, app: str, digest: str | None = None) -> None:
    """Remove the copies of ``app``'s pair ``digest`` (None: all of them, and the folder)."""
    folder = layout.tls_dir(app)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if digest is None or name.rpartition(".")[0] == digest:
            os.unlink(os.path.join(folder, name))
    if digest is None:
        os.rmdir(folder)
