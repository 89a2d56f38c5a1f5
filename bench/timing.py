"""What the benchmarks share: the best time of a call, and the end of a home's supervisord."""

import time


def best(fn, repeat):
    """The shortest wall time of ``repeat`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def shut_down(home) -> None:
    """Shut the home's supervisord down and wait until its process is gone."""
    import os
    import subprocess

    subprocess.run([os.path.join(home.path, "bin", "supervisorctl"), "shutdown"],
                   stdout=subprocess.DEVNULL)
    pid = open(home.pidfile).read().strip() if os.path.exists(home.pidfile) else None
    while pid and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)
