"""``undeploy``: an app removed from the home, leaving the other apps serving.

In this order, each step safe to run again: the app's route leaves the front-end
(nginx reloads with the other apps' routes only, and its workers drain), then every
instance of the app is stopped and destroyed, then its deploy state and variables
go, and the virtualenvs no instance uses any more. Its data (``var/data/NAME``) goes
only when asked, and so do its backing services (:mod:`sarge.services`), whose data
is in there: without ``data`` they keep running. When something cannot be removed
(what its user left too deep in an instance, say), the rest is done and the error says
what is left; an undeploy run again finishes the job.
"""

from __future__ import annotations

import contextlib
import os

from ..errors import HomeError
from ..files import remove_tree
from ..frontend import tls as certificates
from ..instance import check_app_name
from ..services.manager import Services


def undeploy(deployer, app, *, data: bool = False) -> dict:
    """Remove ``app`` from the home of ``deployer``; with ``data``, its data folder too.

    Returns what was done: ``{"app", "route", "instances", "environments", "data",
    "services"}`` (the address taken off the front-end or None, the ids destroyed, how
    many virtualenvs were removed, whether the data folder was, the backing services
    removed with it). :class:`HomeError`
    when the home knows nothing of ``app``, or naming what is left when part of it
    could not be removed.
    """
    home, switch, steps = deployer.home, deployer.switch, deployer.steps
    home.check()
    check_app_name(app)
    home.supervisor.processes()  # supervisord must be running: say so before anything
    with switch.app_lock(app):
        state = switch.state(app)
        instances = [i for i in home.instances() if i.application_name == app]
        known = [p for p in (home.app_state_path(app), home.app_config_path(app))
                 if os.path.exists(p)]
        data_dir = home.data_dir(app)
        services = Services(home)
        if not (instances or known or os.path.lexists(data_dir) or services.store.all(app)):
            raise HomeError(f"the home has no app named {app}")
        done = {"app": app, "route": None, "instances": [], "environments": 0, "data": False,
                "services": []}
        if state.current and state.listen:
            with steps.step("route") as step:
                _take_route_off(deployer, state)
                done["route"] = state.listen
                step["detail"] = f"{state.listen} no longer served"
        left = []
        with steps.step("destroy") as step:
            for instance in instances:
                try:
                    home.lifecycle.destroy(instance)
                    done["instances"].append(instance.id)
                except HomeError as exc:
                    left.append(str(exc))
            step["detail"] = ", ".join(done["instances"]) or "no instance"
        with steps.step("clean up") as step:
            for path in (home.app_state_path(app), home.app_config_path(app)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            with home.lock():
                done["environments"] = len(deployer.environments.collect(
                    i.virtualenv for i in home.instances()))
            if data:
                done["services"] = services.remove_app(app, data=True)
                remains = remove_tree(data_dir)
                if remains:
                    left.append(f"{remains[0].path} could not be removed ({remains[0].reason})")
                done["data"] = not remains
            step["detail"] = (f"{done['environments']} unused environment(s) removed"
                              + "".join(f"; {s} removed" for s in done["services"])
                              + ("; data removed" if done["data"] else ""))
    home.log_action("undeploy", app + (" with its data" if data else "")
                    + (" unfinished" if left else ""))
    if left:
        raise HomeError(f"{app} is not all removed: {left[0]}"
                        + (f" (and {len(left) - 1} more)" if len(left) > 1 else "")
                        + f"; run `sarge HOME undeploy {app}` again once that is fixed")
    return done


def _take_route_off(deployer, state) -> None:
    """The front-end without ``state``'s app, under its lock (as a switch): the state file
    goes first, so the routes read next leave the app out; put back if nginx refuses."""
    switch, frontend = deployer.switch, deployer.frontend
    path = deployer.home.app_state_path(state.name)
    with frontend.lock():
        os.unlink(path)
        try:
            drain = frontend.apply(switch.routes(switch.kept_backups(state.name)))
        except BaseException:
            switch.save(state)
            raise
        certificates.discard(deployer.home, state.name)  # its key, once nginx has let go
    frontend.drain(drain)
