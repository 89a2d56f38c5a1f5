"""A change of an app's variables that takes effect at once: the current version
deployed again with them, and the variables put back as they were when that fails."""

from __future__ import annotations

import contextlib
import os

from ..errors import DeployError
from ..instance import check_app_name
from ..manifest import Manifest
from ..variables import configure, load_app_config, save_app_config


def configure_and_redeploy(deployer, app, assignments=(), unset=(), *, watch=None):
    """Change ``app``'s variables and redeploy its current version with them; when the
    redeploy fails, the variables are put back as they were. Returns the new instance."""
    home = deployer.home
    path = home.app_config_path(app)
    if deployer.state(check_app_name(app)).current is None:
        raise DeployError(f"{app} has no current instance to redeploy")
    before = load_app_config(path)
    existed = os.path.exists(path)
    configure(home, app, assignments, unset)
    try:
        return redeploy(deployer, app, watch=watch)
    except BaseException:
        with home.lock():
            if existed:
                save_app_config(path, before)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        raise


def redeploy(deployer, app, *, watch=None):
    """Deploy the current instance's code again (after a configuration change): its
    folder, less the folders its app writes to (its ``writable`` ones, its data, and the
    ``persistent`` links to its data folder), which the new instance makes anew; its
    revision (a packaged archive's) goes with it."""
    state = deployer.state(check_app_name(app))
    if state.current is None:
        raise DeployError(f"{app} has no current instance to redeploy")
    current = deployer.home.get(state.current)
    declared = Manifest.from_dict(current.manifest)
    return deployer.deploy(deployer.home.instance_dir(current.id), app, watch=watch,
                           exclude=declared.writable + declared.persistent,
                           revision=current.revision)
