"""Benchmark: what the watch window saves when a version fails after its health check.

    .venv/bin/python bench/bench_watch.py [--connections 8] [--watch 15] [--after 10]

A home serving examples/hello; then, under load (--connections clients through the
front-end, a fresh connection per request), a version whose gunicorn master is
killed 3 s after it starts is deployed twice: with a --watch window (the watch sends
the traffic back to the old version, the old one serving as nginx's backup
meanwhile), and with --no-watch, the load running --after seconds past the deploy.
Prints the requests made and failed in each case.
"""

import argparse
import os
import shutil
import tempfile
import time

from bench_deploy import EXAMPLE, PyLoad, make_home, run, stop_home

# In gunicorn's workers only (the release step imports the app too): the master killed.
CRASH = ("\nimport os, signal, sys, threading\n"
         "if 'gunicorn' in sys.argv[0]:\n"
         "    threading.Timer(3, lambda: os.kill(os.getppid(), signal.SIGKILL)).start()\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--watch", type=int, default=15)
    parser.add_argument("--after", type=int, default=10)
    parser.add_argument("--port", type=int, default=8700)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="sarge-bw-", dir="/tmp")
    home = make_home(root, "h", "auto")
    sarge = os.path.join(home, "bin", "sarge")
    try:
        good = os.path.join(root, "good")
        shutil.copytree(EXAMPLE, good)
        run([sarge, "deploy", good, "--app", "hello", "--listen", f"127.0.0.1:{args.port}",
             "--no-watch"])
        bad = os.path.join(root, "bad")
        shutil.copytree(EXAMPLE, bad)
        app = next(os.path.join(bad, n) for n in sorted(os.listdir(bad)) if n.endswith(".py"))
        with open(app, "a") as f:
            f.write(CRASH)
        for label, extra, after in (("with the watch", ["--watch", str(args.watch)], 0.5),
                                    ("without", ["--no-watch"], args.after)):
            load = PyLoad(args.port, args.connections)
            load.start()
            time.sleep(1)
            start = time.perf_counter()
            result = __import__("subprocess").run(
                [sarge, "deploy", bad, "--app", "hello", *extra], capture_output=True,
                text=True)
            time.sleep(after)
            seconds = time.perf_counter() - start
            ok, failed = load.finish()
            print(f"{label}: {ok + failed} requests in {seconds:.1f} s, {failed} failed "
                  f"({failed / max(1, ok + failed):.2%}); deploy exit status "
                  f"{result.returncode}")
            said = [line for line in result.stderr.splitlines() if line.startswith("sarge:")]
            if said:
                print("  " + said[0][:300])
            if label == "with the watch":  # the good version serves again: deploy it back
                run([sarge, "deploy", good, "--app", "hello", "--no-watch"])
    finally:
        stop_home(home)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
