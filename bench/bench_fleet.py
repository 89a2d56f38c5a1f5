"""Benchmark: the time of a sarge-fleet rollout across 1, 3 and 6 hosts, limit 1 and all.

    .venv/bin/python bench/bench_fleet.py [--hosts 1,3,6] [--runs 2] [--port-base 24000]

Six fake hosts on this machine (as the fleet's tests make them: an OpenSSH server of
their own on 127.0.0.1 each, a sarge home with its supervisord and nginx), serving
tests/apps/webapp (gunicorn; its wheels from .cache/wheels: no network). After a first
rollout to all of them (not timed), each case rolls a new version (a code change: the
virtualenv is reused) out to the first N hosts with ``--limit 1`` and with ``--limit``
= N, --runs times, and prints the median wall time of ``sarge-fleet deploy`` and its
ratio to one host's; of the last run, the rollout's own time (the report's: from the
lock to the end, without the command's start-up), what the fleet adds to its hosts'
work (that time less the slowest host of each wave: the lock, the preflight that
asks every host first, packing), and each host's time (upload, deploy, clean-up).
The hosts share this machine's cores: six deploys at once take each longer than one
alone, which separate hosts would not. Needs openssh-server and the wheels
of scripts/setup.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.sshd import FakeHost, keygen, write_fleet  # noqa: E402

WEBAPP = os.path.join(ROOT, "tests", "apps", "webapp")
WHEELS = os.path.join(ROOT, ".cache", "wheels")
SARGE = os.path.join(os.path.dirname(sys.executable), "sarge")
FLEET = [sys.executable, "-m", "sarge.fleet"]


def make_home(path, first_port):
    subprocess.run([SARGE, path, "init"], check=True, capture_output=True)
    settings = os.path.join(path, "etc", "sarge.toml")
    text = open(settings).read()
    root = os.geteuid() == 0
    for old, new in {"first = 5000": f"first = {first_port}",
                     "last = 5999": f"last = {first_port + 99}", "watch = 30": "watch = 0",
                     "pip_args = []": f'pip_args = ["--no-index", "--find-links", '
                                      f'{json.dumps(WHEELS)}]',
                     'default = ""': f'default = "{"root" if root else ""}"',
                     'frontend = ""': f'frontend = "{"root" if root else ""}"'}.items():
        text = text.replace(old, new)
    open(settings, "w").write(text)
    subprocess.run([os.path.join(path, "bin", "supervisord")], check=True)
    return path


def fleet_file(folder, hosts, identity, ports):
    path = write_fleet(folder, hosts, identity)
    text = open(path).read()
    for host, port in zip(hosts, ports):
        text = text.replace(f'name = "{host.name}"',
                            f'name = "{host.name}"\nlisten = "127.0.0.1:{port}"')
    open(path, "w").write(text)
    return path


def rollout(path, source, limit):
    t0 = time.perf_counter()
    result = subprocess.run([*FLEET, "-f", path, "deploy", source, "--app", "web", "--limit",
                             str(limit), "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        sys.exit(f"bench_fleet: the rollout failed: {result.stderr.strip().splitlines()[-1]}")
    report = json.loads(result.stdout)
    DETAIL[(len(report["hosts"]), str(limit))] = (
        report["seconds"], [h["seconds"] for h in report["hosts"]])
    return seconds


#: (hosts, limit): (the rollout's own seconds, each host's), of the last run
DETAIL = {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,3,6")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--port-base", type=int, default=24000)
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    most = max(counts)
    root = tempfile.mkdtemp(prefix="bench-fleet-")
    identity = os.path.join(root, "client_key")
    public = keygen(identity)
    homes, hosts, ports = [], [], []
    source = os.path.join(root, "webapp")
    shutil.copytree(WEBAPP, source)
    try:
        for i in range(most):
            home = make_home(os.path.join(root, f"h{i + 1}", "home"), args.port_base + 100 * i)
            homes.append(home)
            hosts.append(FakeHost(os.path.join(root, f"h{i + 1}", "ssh"), f"h{i + 1}",
                                  args.port_base + 900 + i, home, public).start())
            ports.append(args.port_base + 950 + i)
        everyone = fleet_file(root, hosts, identity, ports)
        print(f"first rollout to {most} host(s) (not timed): "
              f"{rollout(everyone, source, most):.1f}s")
        version = 1
        results = {}
        for n in counts:
            folder = os.path.join(root, f"fleet{n}")
            os.makedirs(folder, exist_ok=True)
            path = fleet_file(folder, hosts[:n], identity, ports[:n])
            for limit in (("1",) if n == 1 else ("1", str(n))):
                times = []
                for _ in range(args.runs):
                    version += 1
                    with open(os.path.join(source, "VERSION"), "w") as f:
                        f.write(str(version))
                    times.append(rollout(path, source, limit))
                results[(n, limit)] = statistics.median(times)
        one = results[(min(counts), "1")]
        print(f"{'HOSTS':>5}  {'LIMIT':>5}  {'SECONDS':>7}  {'x ONE HOST':>10}  "
              "ROLLOUT  OVERHEAD  EACH HOST'S DEPLOY (last run)")
        for (n, limit), seconds in results.items():
            label = "1" if limit == "1" else "all"
            inner, each = DETAIL[(n, limit)]
            waves = [max(each[i:i + int(limit)]) for i in range(0, n, int(limit))]
            print(f"{n:>5}  {label:>5}  {seconds:7.2f}  {seconds / one:10.2f}  {inner:7.2f}  "
                  f"{inner - sum(waves):8.2f}  " + " ".join(f"{x:.1f}" for x in each))
    finally:
        for host in hosts:
            host.stop()
        for home in homes:
            subprocess.run([os.path.join(home, "bin", "supervisorctl"), "shutdown"],
                           capture_output=True)
        time.sleep(2)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
