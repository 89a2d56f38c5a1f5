"""Benchmark: what keep-alive clients lose while apps are deployed again and again.

    .venv/bin/python bench/bench_keepalive.py [--deploys 20] [--clients 8] [--watch 2]

A home serving two copies of examples/hello side by side: ``sock``, whose gunicorn
listens on ``$SARGE_SOCKET`` (its switches move a link: nginx is not reloaded), and
``port``, on ``$PORT`` (each switch reloads nginx, whose old workers close the idle
keep-alive connections they hold as they exit). --clients clients per app keep one
connection open each and send GET and POST on it in turn (a client reconnects after
a failure, as browsers do). Then --deploys deploys of ``sock``, then as many of
``port``, each with a --watch window. Prints, per phase, each app's requests and
failures (a POST on a kept-open connection cannot be safely retried by a client).
"""

import argparse
import http.client
import os
import shutil
import tempfile
import threading
import time

from bench_deploy import EXAMPLE, make_home, run, stop_home


class KeepAlive:
    """Clients that each keep one connection open to ``port``: GET and POST in turn."""

    def __init__(self, port, clients):
        self.port, self.stop = port, threading.Event()
        self.lock = threading.Lock()
        self.counts = {"GET": [0, 0], "POST": [0, 0]}  # method: [ok, failed]
        self.threads = [threading.Thread(target=self.client) for _ in range(clients)]

    def client(self):
        conn, i = None, 0
        while not self.stop.is_set():
            i += 1
            method = "POST" if i % 2 else "GET"
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request(method, "/", body=b"x" * 100 if method == "POST" else None)
                response = conn.getresponse()
                response.read()
                good = 200 <= response.status < 400
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                good = False
                conn.close()
                conn = None
            with self.lock:
                self.counts[method][0 if good else 1] += 1
            time.sleep(0.005)

    def snapshot(self):
        with self.lock:
            return {m: list(c) for m, c in self.counts.items()}

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def delta(before, after):
    return {m: [after[m][0] - before[m][0], after[m][1] - before[m][1]] for m in after}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--watch", type=int, default=2)
    parser.add_argument("--port", type=int, default=8750)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="sarge-bk-", dir="/tmp")
    home = make_home(root, "h", "auto")
    sarge = os.path.join(home, "bin", "sarge")
    ports = {"sock": args.port, "port": args.port + 1}
    binds = {"sock": "unix:$SARGE_SOCKET", "port": "127.0.0.1:$PORT"}
    try:
        sources = {}
        for app, port in ports.items():
            source = sources[app] = os.path.join(root, app)
            shutil.copytree(EXAMPLE, source)
            procfile = os.path.join(source, "Procfile")
            text = open(procfile).read().replace("127.0.0.1:$PORT", binds[app])
            open(procfile, "w").write(text)
            run([sarge, "deploy", source, "--app", app, "--listen", f"127.0.0.1:{port}",
                 "--no-watch"])
        loads = {app: KeepAlive(port, args.clients) for app, port in ports.items()}
        for load in loads.values():
            load.start()
        time.sleep(1)
        for deployed in ("sock", "port"):
            before = {app: load.snapshot() for app, load in loads.items()}
            start = time.perf_counter()
            for _ in range(args.deploys):
                run([sarge, "deploy", sources[deployed], "--app", deployed,
                     "--watch", str(args.watch)])
            seconds = time.perf_counter() - start
            time.sleep(0.5)
            print(f"{args.deploys} deploys of {deployed} ({binds[deployed]}) in "
                  f"{seconds:.0f} s:")
            for app, load in loads.items():
                counts = delta(before[app], load.snapshot())
                total = sum(ok + failed for ok, failed in counts.values())
                failed = sum(f for _, f in counts.values())
                print(f"  clients of {app:<4}  {total:>7,} keep-alive requests, {failed} failed"
                      f" (GET {counts['GET'][1]}, POST {counts['POST'][1]})")
        for load in loads.values():
            load.finish()
    finally:
        stop_home(home)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
