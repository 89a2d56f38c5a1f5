"""Benchmark: what one short command costs, in CPU and wall clock.

    .venv/bin/python bench/bench_cli.py [--repeat 30]

Builds a home with one instance, starts its supervisord, and runs each command
--repeat times as an operator runs it (``bin/sarge ...``, a new Python each time):
``--version`` (no home read), ``list --json``, ``status ID --json``, and ``new`` with
``destroy`` (the only one of them that renders a template). It prints, per command,
the mean CPU time (user + system, ``getrusage`` of the children) and the median wall
clock. A short command's cost is mostly Python's start and the imports, so this is the
figure that the suite's hundreds of commands and an operator's scripts pay each time.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sarge.home import Home  # noqa: E402

from timing import shut_down  # noqa: E402


def cost(argv, repeat):
    """(mean CPU seconds, median wall seconds) of running ``argv`` ``repeat`` times."""
    walls = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu / repeat, statistics.median(walls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="sgc") as root:
        home = Home(os.path.join(root, "h"))
        home.init(user="root" if os.geteuid() == 0 else "")
        instance_id = home.lifecycle.new("web").id
        sarge = os.path.join(home.path, "bin", "sarge")
        subprocess.run([os.path.join(home.path, "bin", "supervisord")], check=True)
        try:
            while not home.supervisor.is_running():
                time.sleep(0.05)
            results["--version"] = cost([sarge, "--version"], args.repeat)
            results["list --json"] = cost([sarge, "list", "--json"], args.repeat)
            results["status ID --json"] = cost([sarge, "status", instance_id, "--json"],
                                               args.repeat)
            made = []
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            walls = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                made.append(subprocess.run([sarge, "new", '{"application_name": "web"}'],
                                           check=True, capture_output=True,
                                           text=True).stdout.strip())
                walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            results["new"] = (((after.ru_utime + after.ru_stime)
                               - (before.ru_utime + before.ru_stime)) / args.repeat,
                              statistics.median(walls))
            for made_id in made:
                subprocess.run([sarge, "destroy", made_id], check=True,
                               stderr=subprocess.DEVNULL)
        finally:
            shut_down(home)
    if args.json:
        print(json.dumps({k: {"cpu": c, "wall": w} for k, (c, w) in results.items()},
                         indent=2))
        return
    print(f"{'command':<18} {'CPU':>8} {'wall':>8}")
    for name, (cpu, wall) in results.items():
        print(f"{name:<18} {cpu * 1000:>6.0f}ms {wall * 1000:>6.0f}ms")


if __name__ == "__main__":
    main()
