"""Apps' variables (``etc/apps/APP.json``) and the copies each deploy froze for its
instance (``etc/apps/instances/ID.json``), restored from one another."""

from __future__ import annotations

import os

from ..errors import SargeError
from ..variables import load_app_config, save_app_config
from .apps import app_names


def repair_app_configs(home, findings, states: dict) -> None:
    """Restore each damaged app's variables from the copy its current instance was
    deployed with."""
    for app in sorted(app_names(home, findings, home.app_configs_dir) | set(states)):
        path = home.app_config_path(app)
        if os.path.exists(path):
            try:
                load_app_config(path)
                continue
            except SargeError:
                problem = "damaged: not a JSON object of strings"
        else:
            problem = "missing, though the current instance was deployed with variables"
        state = states.get(app)
        frozen = home.instance_config_path(state.current) if state and state.current \
            else None
        try:
            copy = load_app_config(frozen) if frozen else None
        except SargeError:
            copy = None
        if not os.path.exists(path) and not copy:
            continue  # never configured (or every variable unset: the file would be {})
        if copy is None:
            findings.manual(path, problem, "no deployed copy to restore it from: remove it "
                            "and set the variables again with `sarge HOME config`")
            continue
        findings.fix(path, problem, f"restored from the copy {state.current} was deployed "
                     "with (changes made since that deploy are lost)",
                     lambda p=path, c=copy: save_app_config(p, c))


def repair_instance_configs(home, findings, records: dict) -> None:
    """Replace each damaged frozen copy by its app's variables as they are now."""
    folder = home.instance_configs_dir
    if not os.path.isdir(folder):
        return
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        instance = records.get(name[:-5])
        if not name.endswith(".json") or instance is None:
            continue
        try:
            load_app_config(path)
            continue
        except SargeError:
            problem = "damaged: not a JSON object of strings"
        try:
            current = load_app_config(home.app_config_path(instance.application_name))
        except SargeError:
            findings.manual(path, problem, "remove it: the instance then gets its app's "
                            "variables (repair those first)")
            continue
        findings.fix(path, problem, f"replaced by {instance.application_name}'s variables "
                     "as they are now (the values of its deploy are lost)",
                     lambda p=path, c=current: save_app_config(p, c))
