"""Benchmark: sarge's home commands against supervisorctl, at N = 1, 100 and 500 instances.

    .venv/bin/python bench/bench_home.py [--sizes 1,100,500] [--repeat 5]

For each N it builds a home with N instances (made while supervisord is down,
then loaded by starting it), and measures, as whole commands the way an
operator runs them (median of --repeat runs, wall clock):

- ``bin/sarge list --json`` against ``bin/supervisorctl status`` on the same home;
- ``bin/sarge start ID`` + ``bin/sarge stop ID`` of one instance;
- ``bin/sarge new`` (each new instance is destroyed again, untimed);
- ``bin/sarge repair --dry-run``: the whole-home check of every state file
  (nothing to repair; a command run after a power cut, not in a hot path).

The instances run ``sleep``; startsecs is 0 so that start measures sarge and
supervisord, not a deliberate wait.  Goals (issue 2): list within 1.5x of
supervisorctl status at N = 500, start+stop at N = 500 within 1.5x of N = 1.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sarge.home import Home  # noqa: E402

from timing import shut_down  # noqa: E402


def timed(argv, repeat):
    """Median wall time of ``argv`` (supervisorctl status exits 3 when some are stopped)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build(root, n):
    home = Home(os.path.join(root, f"n{n}"))
    home.init(user="root" if os.geteuid() == 0 else "")  # as root: root only when told
    with open(home.settings_path) as f:
        text = f.read()
    text = text.replace("startsecs = 1", "startsecs = 0").replace("last = 5999", "last = 9999")
    text = text.replace("first = 5000", "first = 30000").replace("last = 9999", "last = 39999")
    with open(home.settings_path, "w") as f:
        f.write(text)
    ids = [home.lifecycle.new("web").id for _ in range(n)]  # supervisord is down: no reload per new
    for instance_id in ids:
        server = os.path.join(home.instance_dir(instance_id), "server")
        with open(server, "w") as f:
            f.write("#!/bin/sh\nexec sleep 100000\n")
        os.chmod(server, 0o755)
    subprocess.run([os.path.join(home.path, "bin", "supervisord")], check=True)
    while not home.supervisor.is_running():
        time.sleep(0.05)
    return home, ids


def measure(home, ids, repeat):
    sarge = os.path.join(home.path, "bin", "sarge")
    ctl = os.path.join(home.path, "bin", "supervisorctl")
    result = {
        "list": timed([sarge, "list", "--json"], repeat),
        "supervisorctl_status": timed([ctl, "status"], repeat),
    }
    target = ids[len(ids) // 2]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sarge, "start", target], check=True, stderr=subprocess.DEVNULL)
        subprocess.run([sarge, "stop", target], check=True, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    result["start_stop"] = statistics.median(times)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run([sarge, "new", '{"application_name": "web"}'], check=True,
                             capture_output=True, text=True).stdout.strip()
        times.append(time.perf_counter() - t0)
        subprocess.run([sarge, "destroy", out], check=True, stderr=subprocess.DEVNULL)
    result["new"] = statistics.median(times)
    result["repair"] = timed([sarge, "repair", "--dry-run"], repeat)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,500")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(prefix="sgb") as root:
        for n in sizes:
            home, ids = build(root, n)
            try:
                results[n] = measure(home, ids, args.repeat)
            finally:
                shut_down(home)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    first = results[sizes[0]]
    versus = f"vs N={sizes[0]}"
    print(f"{'N':>5} {'list --json':>12} {'ctl status':>11} {'ratio':>6} "
          f"{'start+stop':>11} {versus:>8} {'new':>8} {versus:>8} {'repair':>8}")
    for n in sizes:
        r = results[n]
        print(f"{n:>5} {r['list'] * 1000:>10.0f}ms {r['supervisorctl_status'] * 1000:>9.0f}ms "
              f"{r['list'] / r['supervisorctl_status']:>6.2f} {r['start_stop'] * 1000:>9.0f}ms "
              f"{r['start_stop'] / first['start_stop']:>8.2f} {r['new'] * 1000:>6.0f}ms "
              f"{r['new'] / first['new']:>8.2f} {r['repair'] * 1000:>6.0f}ms")


if __name__ == "__main__":
    main()
