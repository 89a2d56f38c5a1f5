"""HTTPS through the front-end, with real nginx and certificates the test makes with
openssl (a local CA): the redirect, ACME's webroot, refusals by name, TLS 1.2 and up,
a certificate swap and a renewal under load with no failed request."""

import os
import shutil
import socket
import ssl
import subprocess

import pytest

from .conftest import HERE, Clients, kill_home, listen_port, make_home, sarge, start_supervisord

SITEAPP = os.path.join(HERE, "apps", "siteapp")
DOMAIN = "shop.example.test"

pytestmark = [pytest.mark.xdist_group("tls"),
              pytest.mark.skipif(not shutil.which("openssl") or not shutil.which("curl"),
                                 reason="openssl and curl are needed (scripts/setup)")]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class CA:
    """A certificate authority in ``folder``: ``issue`` makes a key and a certificate."""

    def __init__(self, folder):
        self.folder = folder
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                "-out", "ca.pem", "-subj", "/CN=sarge test CA", "-days", "2", cwd=folder)
        self.pem = str(folder / "ca.pem")
        (folder / "index.txt").write_text("")
        (folder / "serial").write_text("1000\n")
        (folder / "ca.cnf").write_text(f"""
[ca]
default_ca = test
[test]
dir = {folder}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
""")

    def issue(self, name, domains=(DOMAIN,), expired=False):
        """(certificate, key) paths, for ``domains``; ``expired``: valid in 2020 only."""
        f = self.folder
        san = ",".join(f"DNS:{d}" for d in domains)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={domains[0]}", "-addext",
                f"subjectAltName={san}", cwd=f)
        dates = (["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] if expired
                 else ["-days", "2"])
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                "-in", f"{name}.csr", "-out", f"{name}.pem", "-notext", *dates, cwd=f)
        return str(f / f"{name}.pem"), str(f / f"{name}.key")


@pytest.fixture(scope="module")
def tls_home(tmp_path_factory):
    top = tmp_path_factory.mktemp("tls")
    (top / "ca").mkdir()
    ca = CA(top / "ca")
    h = make_home(top / "home", offset=600)
    start_supervisord(h)
    source = top / "shop"
    shutil.copytree(SITEAPP, source)
    sarge(h, "config", "shop", f"ALLOWED_HOSTS={DOMAIN}", check=True)
    yield h, ca, source
    kill_home(h)


HTTP, HTTPS = listen_port(60), listen_port(61)


def curl(*args):
    """curl to the front-end as a client on the internet would reach it (``--resolve``)."""
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--resolve", f"{DOMAIN}:{HTTPS}:127.0.0.1",
         "--resolve", f"{DOMAIN}:{HTTP}:127.0.0.1", *args],
        capture_output=True, text=True)


def served_serial(ca):
    """The serial of the certificate nginx serves for the domain (verified by the CA)."""
    context = ssl.create_default_context(cafile=ca.pem)
    with socket.create_connection(("127.0.0.1", HTTPS), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            return tls.getpeercert()["serialNumber"]


def serial_of(cert):
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-serial"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().partition("=")[2]


def test_https_with_a_redirect_acme_and_modern_protocols_only(tls_home):
    h, ca, source = tls_home
    cert, key = ca.issue("first")
    result = sarge(h, "deploy", str(source), "--app", "shop", "--check", "/health",
                   "--listen", f"127.0.0.1:{HTTP}", "--domain", DOMAIN,
                   "--tls", cert, key, "--listen-tls", f"127.0.0.1:{HTTPS}", timeout=120)
    assert result.returncode == 0, result.stderr
    instance = result.stdout.strip()
    answer = curl("--cacert", ca.pem, f"https://{DOMAIN}:{HTTPS}/")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == [instance, f"{DOMAIN}:{HTTPS}", "https"]
    # plain HTTP: to HTTPS, on its port
    redirect = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                    f"http://{DOMAIN}:{HTTP}/a?b=1")
    assert redirect.stdout == f"301 https://{DOMAIN}:{HTTPS}/a?b=1"
    # ACME's HTTP challenge, from the home's webroot, on plain HTTP: not redirected
    challenge = os.path.join(h.acme_dir, ".well-known", "acme-challenge")
    os.makedirs(challenge, exist_ok=True)
    with open(os.path.join(challenge, "t0ken"), "w") as f:
        f.write("t0ken.thumbprint")
    acme = curl(f"http://{DOMAIN}:{HTTP}/.well-known/acme-challenge/t0ken")
    assert acme.stdout == "t0ken.thumbprint"
    # TLS 1.2 and 1.3 only
    old = curl("--cacert", ca.pem, "--tlsv1.0", "--tls-max", "1.1", f"https://{DOMAIN}:{HTTPS}/")
    assert old.returncode != 0
    assert curl("--cacert", ca.pem, "--tlsv1.2", "--tls-max", "1.2", "-o", "/dev/null",
                f"https://{DOMAIN}:{HTTPS}/").returncode == 0
    # no HSTS unless asked
    headers = curl("--cacert", ca.pem, "-D", "-", "-o", "/dev/null",
                   f"https://{DOMAIN}:{HTTPS}/").stdout
    assert "strict-transport-security" not in headers.lower()
    # a name the port does not serve: the handshake is refused
    unknown = subprocess.run(["curl", "-sS", "-k", "--resolve", f"other.test:{HTTPS}:127.0.0.1",
                              f"https://other.test:{HTTPS}/"], capture_output=True, text=True)
    assert unknown.returncode != 0
    # nginx reads its own copies: the key private, the folder root's alone
    folder = h.tls_dir("shop")
    names = sorted(os.listdir(folder))
    assert [n.rpartition(".")[2] for n in names] == ["crt", "key"]
    assert os.stat(os.path.join(folder, names[1])).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(folder)).st_mode & 0o777 == 0o700


def test_bad_pairs_are_refused_by_name_and_change_nothing(tls_home, tmp_path):
    h, ca, source = tls_home
    cert, key = ca.issue("second")
    _, other_key = ca.issue("third")
    expired_cert, expired_key = ca.issue("old", expired=True)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    before = open(h.nginx_conf).read(), sorted(os.listdir(h.tls_dir("shop")))
    for args, message in (
            (("--cert", cert, "--key", other_key), f"key {other_key} is not the key of the "
             f"certificate {cert}"),
            (("--cert", expired_cert, "--key", expired_key), f"certificate {expired_cert} "
             "expired on Jan  2 00:00:00 2020 GMT: renew it first"),
            (("--cert", str(tmp_path / "junk.pem"), "--key", key), f"certificate "
             f"{tmp_path / 'junk.pem'} is not a PEM certificate (-----BEGIN CERTIFICATE-----)"),
            (("--cert", str(tmp_path / "none.pem"), "--key", key), f"certificate "
             f"{tmp_path / 'none.pem'}: No such file or directory")):
        result = sarge(h, "tls", "shop", *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [f"sarge: --tls {message}"], result.stderr
    assert (open(h.nginx_conf).read(), sorted(os.listdir(h.tls_dir("shop")))) == before


class Load(Clients):
    """HTTPS requests in a loop on fresh connections, verified against the CA."""

    def __init__(self, ca, threads=4):
        self.context = ssl.create_default_context(cafile=ca.pem)
        self.ok, self.failures, self.serials = 0, [], set()
        super().__init__(threads)

    def client(self, n):
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", HTTPS), timeout=5) as raw:
                    with self.context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
                        self.serials.add(tls.getpeercert()["serialNumber"])
                        tls.sendall(f"GET /health HTTP/1.1\r\nHost: {DOMAIN}\r\n"
                                    "Connection: close\r\n\r\n".encode())
                        data = b""
                        while chunk := tls.recv(4096):
                            data += chunk
                if not data.startswith(b"HTTP/1.1 200"):
                    self.failures.append(data[:60])
                else:
                    self.ok += 1
            except (OSError, ssl.SSLError) as exc:
                self.failures.append(repr(exc))



def test_a_certificate_swap_and_a_renewal_lose_no_request(tls_home):
    h, ca, _ = tls_home
    cert, key = ca.issue("swap")
    with Load(ca) as load:
        swapped = sarge(h, "tls", "shop", "--cert", cert, "--key", key, "--hsts")
        assert swapped.returncode == 0, swapped.stderr
    assert load.failures == [] and load.ok > 10, (load.failures[:5], load.ok)
    assert served_serial(ca) == serial_of(cert)
    headers = curl("--cacert", ca.pem, "-D", "-", "-o", "/dev/null",
                   f"https://{DOMAIN}:{HTTPS}/").stdout.lower()
    assert "strict-transport-security: max-age=31536000" in headers
    # certbot renews in place: nothing changes until tls --reload, then the new one
    renewed, renewed_key = ca.issue("renewed")
    shutil.copy(renewed, cert)
    shutil.copy(renewed_key, key)
    assert served_serial(ca) != serial_of(cert)
    with Load(ca) as load:
        reloaded = sarge(h, "tls", "shop", "--reload")
        assert reloaded.returncode == 0, reloaded.stderr
    assert load.failures == [] and load.ok > 10, (load.failures[:5], load.ok)
    assert served_serial(ca) == serial_of(cert)
    assert len(os.listdir(h.tls_dir("shop"))) == 4  # the pair served, and the one before
    # without TLS again: plain HTTP serves
    off = sarge(h, "tls", "shop", "--off")
    assert off.returncode == 0, off.stderr
    assert curl(f"http://{DOMAIN}:{HTTP}/").stdout.split()[2] == "http"
