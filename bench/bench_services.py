"""What backing services cost: how long ``service add`` takes until each server answers
(real redis-server, memcached and rabbitmq-server under a real supervisord), and what
reading the services' records adds to the launch of every process of an instance.

    .venv/bin/python bench/bench_services.py [--apps 100] [--repeat 5] [--port 15000]

1. ``sarge HOME service add APP KIND`` for each kind installed, wall time (best of
   ``--repeat`` for the environment, one add per kind: a server starts once).
2. The services' variables of one app (:func:`sarge.services.store.variables`, what
   the launcher reads), in a home holding 3 services for each of ``--apps`` apps.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from sarge.home import Home  # noqa: E402
from sarge.services.store import Service, ServiceStore, variables  # noqa: E402

from timing import best  # noqa: E402


def settings(home, port):
    path = os.path.join(home, "etc", "sarge.toml")
    text = open(path).read()
    user = "root" if os.geteuid() == 0 else ""
    for old, new in {"first = 5000": f"first = {port}", "last = 5999": f"last = {port + 99}",
                     'default = ""': f'default = "{user}"',
                     'frontend = ""': f'frontend = "{user}"'}.items():
        text = text.replace(old, new)
    open(path, "w").write(text)


def adds(tmp, port):
    home = os.path.join(tmp, "home")
    Home(home).init()
    settings(home, port)
    subprocess.run([os.path.join(home, "bin", "supervisord")], check=True)
    try:
        for kind, program in (("redis", "redis-server"), ("memcached", "memcached"),
                              ("rabbitmq", "/usr/lib/rabbitmq/bin/rabbitmq-server")):
            if not shutil.which(program):
                print(f"service add {kind}: not installed, skipped")
                continue
            start = time.perf_counter()
            subprocess.run([os.path.join(home, "bin", "sarge"), "service", "add", "bench",
                            kind], check=True, capture_output=True)
            print(f"service add {kind}: {time.perf_counter() - start:.2f} s until it answers")
    finally:
        subprocess.run([os.path.join(home, "bin", "supervisorctl"), "shutdown"],
                       capture_output=True)
        time.sleep(3)


def reads(tmp, apps, repeat):
    home = Home(os.path.join(tmp, "records"))
    os.makedirs(home.services_dir)
    store = ServiceStore(home)
    for n in range(apps):
        for k, kind in enumerate(("redis", "memcached", "rabbitmq")):
            ports = {"main": 5000 + 3 * n + k, "dist": 1, "epmd": 2}
            store.save(Service(f"app{n}", kind, ports, "x" * 32, "1", "2026-12-02T00:00:00Z"))
    print(f"variables of one app among {apps} apps ({3 * apps} records): "
          f"{best(lambda: variables(home, 'app7'), repeat) * 1000:.3f} ms")
    print(f"variables of an app without services: "
          f"{best(lambda: variables(home, 'none'), repeat) * 1000:.3f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=15000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        reads(tmp, args.apps, args.repeat)
        adds(tmp, args.port)


if __name__ == "__main__":
    main()
