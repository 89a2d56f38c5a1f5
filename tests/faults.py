"""Fault injection: a deploy in a process of its own that kills itself with SIGKILL at a
named point (:class:`sarge.deploy.Deployer`'s ``fault``), as a power cut or the OOM
killer would. Not an option of the command line: tests build the Deployer themselves."""

import subprocess
import sys

#: The deploy, as ``sarge HOME deploy SOURCE --app APP`` runs it, with ``fault=POINT``.
_DEPLOY = """
import sys
from sarge.deploy import Deployer
from sarge.home import Home

home, source, app, point = sys.argv[1:]
def progress(step, seconds, detail):
    print(f"  {step:<13} {seconds:6.2f}s  {detail}", file=sys.stderr, flush=True)
instance = Deployer(Home(home), progress=progress, fault=point).deploy(source, app)
print(instance.id)
"""


def deploy_killed_at(h, source, app, point, timeout=300):
    """Deploy ``source`` as ``app`` in ``python -I`` (as ``bin/sarge`` runs), killed at
    ``point``: a step's name, ``environment:install`` or ``switch:reload``. Returns the
    CompletedProcess; its returncode is -9 when the point was reached."""
    return subprocess.run([sys.executable, "-I", "-c", _DEPLOY, h.path, str(source), app, point],
                          capture_output=True, text=True, timeout=timeout)
