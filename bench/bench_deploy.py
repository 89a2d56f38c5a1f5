"""Benchmark: rolling deploys against the naive restart, and where a deploy's time goes.

    .venv/bin/python bench/bench_deploy.py [--swaps 10] [--connections 32]

1. Failed requests under load (--connections concurrent clients through the
   front-end, each request on a fresh connection): during --swaps rolling
   deploys, and during --swaps ``supervisorctl restart`` of a single instance
   (the naive way). The load client is wrk (Debian's package) when installed,
   else a Python client; both count every non-2xx answer and socket error.
2. Where a deploy's time goes, step by step: a first deploy and a code-only
   redeploy of examples/hello, with pip and with uv, next to a bare
   ``virtualenv`` + ``pip install -r`` (and ``uv venv`` + ``uv pip install``) of
   the same requirements, caches warm for both.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE = os.path.join(ROOT, "examples", "hello")
PY = sys.executable
BIN = os.path.dirname(PY)


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def make_home(root, name, installer):
    home = os.path.join(root, name)
    # As root, sarge runs apps as root only when told: the benchmark measures deploys,
    # not user switching, and this machine's Python may be private to root.
    run([os.path.join(BIN, "sarge"), home, "init"]
        + (["--user", "root"] if os.geteuid() == 0 else []))
    path = os.path.join(home, "etc", "sarge.toml")
    text = open(path).read().replace('installer = "auto"', f'installer = "{installer}"')
    if os.geteuid() == 0:  # nginx's workers too: the temporary home is private to root
        text = text.replace('frontend = ""', 'frontend = "root"')
    open(path, "w").write(text)
    run([os.path.join(home, "bin", "supervisord")])
    return home


def stop_home(home):
    subprocess.run([os.path.join(home, "bin", "supervisorctl"), "shutdown"],
                   capture_output=True)
    pidfile = os.path.join(home, "var", "run", "supervisord.pid")
    deadline = time.monotonic() + 30
    while os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.1)


def deploy(home, source, *args):
    t0 = time.perf_counter()
    result = run([os.path.join(home, "bin", "sarge"), "deploy", source, "--app", "hello", *args])
    total = time.perf_counter() - t0
    steps = {}
    for line in result.stderr.splitlines():
        m = re.match(r"\s+(.+?)\s+(\d+\.\d+)s", line)
        if m:
            steps[m.group(1)] = float(m.group(2))
    return result.stdout.strip(), total, steps


class PyLoad:
    """Fresh-connection GET/POST clients in threads, counting every failure."""

    def __init__(self, port, clients):
        import http.client

        self.http = http.client
        self.port, self.stop = port, threading.Event()
        self.ok, self.failed, self.lock = 0, 0, threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(n,)) for n in range(clients)]

    def client(self, n):
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                conn = self.http.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if (n + i) % 2:
                    conn.request("POST", "/", body=b"x" * 100, headers={"Connection": "close"})
                else:
                    conn.request("GET", "/", headers={"Connection": "close"})
                response = conn.getresponse()
                response.read()
                conn.close()
                good = 200 <= response.status < 400
            except OSError:
                good = False
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        return self.ok, self.failed


class WrkLoad:
    """wrk with Connection: close (a fresh connection per request), for a fixed time."""

    def __init__(self, port, clients, seconds):
        self.proc = subprocess.Popen(
            ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "-H", "Connection: close",
             f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)

    def start(self):
        pass

    def finish(self):
        out, _ = self.proc.communicate()
        total = int(re.search(r"(\d+) requests in", out).group(1))
        failed = 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            failed += sum(int(x) for x in m.groups())
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m:
            failed += int(m.group(1))
        return total - failed, failed


def under_load(port, clients, action, swaps, use_wrk):
    """Run ``action`` ``swaps`` times under load; return (ok, failed, seconds)."""
    t0 = time.perf_counter()
    if use_wrk:
        # wrk runs for a fixed time: estimate it from one action.
        action()
        one = time.perf_counter() - t0
        load = WrkLoad(port, clients, int(one * swaps * 1.5) + 3)
    else:
        load = PyLoad(port, clients)
    load.start()
    time.sleep(1)
    t0 = time.perf_counter()
    for _ in range(swaps):
        action()
        time.sleep(0.2)
    seconds = time.perf_counter() - t0
    ok, failed = load.finish()
    return ok, failed, seconds


def bare_install(root, installer, requirements):
    env_dir = os.path.join(root, f"bare-{installer}-{time.monotonic_ns()}")
    t0 = time.perf_counter()
    if installer == "uv":
        uv = shutil.which("uv") or os.path.join(BIN, "uv")
        run([uv, "venv", "--quiet", "--python", PY, env_dir])
        run([uv, "pip", "install", "--compile-bytecode", "--python",
             os.path.join(env_dir, "bin", "python"),
             "-r", requirements])
    else:
        run([PY, "-m", "virtualenv", "--quiet", "--python", PY, env_dir])
        run([os.path.join(env_dir, "bin", "python"), "-m", "pip", "install",
             "--disable-pip-version-check", "-r", requirements])
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load client")
    args = parser.parse_args()
    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    installers = ["pip"] + (["uv"] if shutil.which("uv") or os.path.exists(
        os.path.join(BIN, "uv")) else [])
    requirements = os.path.join(EXAMPLE, "requirements.txt")
    with tempfile.TemporaryDirectory(prefix="sgd") as root:
        print("== Where a deploy's time goes (examples/hello; caches warm)")
        for installer in installers:
            bare_install(root, installer, requirements)  # warm the caches
            bare = bare_install(root, installer, requirements)
            home = make_home(root, f"home-{installer}", installer)
            try:
                _, first, first_steps = deploy(home, EXAMPLE, "--listen",
                                               f"127.0.0.1:{args.port}")
                _, again, again_steps = deploy(home, EXAMPLE)
            finally:
                stop_home(home)
            # The app's own time: its release command, its start-up until it answers the
            # health check, and its graceful stop (gunicorn takes about 1 s to exit).
            app_own = sum(again_steps.get(k, 0) for k in ("release", "health check", "stop old"))
            own = again - app_own
            first_app = sum(first_steps.get(k, 0) for k in ("release", "health check"))
            print(f"-- installer {installer}")
            print(f"   bare virtualenv + install          {bare:6.2f}s")
            print(f"   first deploy (whole command)       {first:6.2f}s  "
                  f"= {first / bare:.2f}x the bare install; without the app's release and "
                  f"start-up {first - first_app:.2f}s = {(first - first_app) / bare:.2f}x")
            print("   steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in first_steps.items()))
            print(f"   code-only redeploy (whole command) {again:6.2f}s; the app's own release, "
                  f"start-up and stop {app_own:.2f}s; sarge's own time {own:.2f}s")
            print("   steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in again_steps.items()))

        print(f"\n== Failed requests under load ({args.connections} connections, "
              f"{'wrk' if use_wrk else 'Python client'}, fresh connection per request)")
        home = make_home(root, "home-load", installers[-1])
        try:
            instance, _, _ = deploy(home, EXAMPLE, "--listen", f"127.0.0.1:{args.port + 1}")
            ok, failed, secs = under_load(
                args.port + 1, args.connections, lambda: deploy(home, EXAMPLE), args.swaps,
                use_wrk)
            print(f"   {args.swaps} rolling deploys:            {failed:6d} failed of "
                  f"{ok + failed} requests ({secs:.1f}s)")
            current = deploy(home, EXAMPLE)[0]
            ctl = os.path.join(home, "bin", "supervisorctl")
            ok, failed, secs = under_load(
                args.port + 1, args.connections,
                lambda: run([ctl, "restart", f"{current}:web"]), args.swaps, use_wrk)
            print(f"   {args.swaps} supervisorctl restarts:     {failed:6d} failed of "
                  f"{ok + failed} requests ({secs:.1f}s)")
        finally:
            stop_home(home)


if __name__ == "__main__":
    main()
