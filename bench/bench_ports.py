"""Benchmark: asking who listens on a port, over netlink and from /proc, with and without
many connections open.

    .venv/bin/python bench/bench_ports.py [--connections 2000] [--repeat 200]

A deploy asks who listens on each port it switches to (``sarge.ports.check_holder``),
and the front-end asks whether nginx's old workers still listen every 10 ms after a
reload. This opens one listener on 127.0.0.1, times ``listeners(port)`` asked of the
kernel over netlink (``sarge.sockdiag``) and read from ``/proc/net/tcp`` and ``tcp6``,
then opens ``--connections`` connections to it (each one two sockets in the kernel's
table) and times both again. It prints the CPU time per call (user + system of this
process, ``time.process_time``) and checks that both ways name the same listener.
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sarge.ports import PROC_TABLES, listeners  # noqa: E402


def per_call(fn, repeat) -> float:
    """CPU milliseconds per call of ``fn``, over ``repeat`` calls."""
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1000


def measure(port, repeat, label):
    netlink, proc = listeners(port), listeners(port, PROC_TABLES)
    assert netlink == proc and len(netlink) == 1, (netlink, proc)
    print(f"{label:>22}: netlink {per_call(lambda: listeners(port), repeat):7.3f} ms, "
          f"/proc {per_call(lambda: listeners(port, PROC_TABLES), repeat):7.3f} ms per call")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(args.connections)
        port = server.getsockname()[1]
        measure(port, args.repeat, "one listener")
        clients, accepted = [], []
        try:
            for _ in range(args.connections):
                clients.append(socket.create_connection(("127.0.0.1", port)))
                accepted.append(server.accept()[0])
            measure(port, args.repeat, f"{args.connections} connections")
        finally:
            for s in clients + accepted:
                s.close()


if __name__ == "__main__":
    main()
