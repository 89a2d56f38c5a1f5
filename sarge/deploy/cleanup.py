"""What a deploy leaves behind it: the app's deploy-made instances it no longer keeps, and
the virtualenvs no instance uses."""

from __future__ import annotations

from ..errors import HomeError


def clean(deployer, state, keep_all_previous: bool = False) -> list:
    """Destroy the app's deploy-made instances that are neither current nor kept; return
    their ids (one not all removed: with a note). After a deploy (not before: a failed
    deploy's environment serves its retry) also remove the environments no instance
    uses."""
    home = deployer.home
    keep = state.previous if keep_all_previous else state.previous[:home.settings.keep]
    wanted = {state.current, *keep}
    removed = []
    for instance in home.instances():
        if (instance.application_name != state.name or instance.origin != "deploy"
                or instance.id in wanted):
            continue
        try:
            home.lifecycle.destroy(instance)
            removed.append(instance.id)
        except HomeError:
            # What its app's user left cannot all go: its record stays, the next
            # clean-up tries again, and this deploy goes on.
            removed.append(f"{instance.id} (not all of it: `sarge HOME destroy "
                           f"{instance.id}` says what is left)")
    if keep_all_previous:
        for instance_id in keep:  # kept ones are stopped; a watch killed midway left
            if deployer._running(instance_id):  # the one it could go back to running
                home.lifecycle.stop(instance_id)
        return removed
    if tuple(keep) != state.previous:
        deployer.switch.save(state.replace(previous=tuple(keep)))
    # Under the home lock: a concurrent deploy records its environment (set_processes)
    # under the same lock, so an environment is never removed between use and record.
    with home.lock():
        deployer.environments.collect(i.virtualenv for i in home.instances())
    return removed
