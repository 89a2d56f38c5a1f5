"""Changes that take effect at once by deploying the current version again: of an app's
variables (put back as they were when that fails), and of its process counts."""

from __future__ import annotations

import contextlib
import os

from ..apps import check_scale
from ..errors import DeployError, UsageError
from ..instance import base_type, check_app_name
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


def scale_and_redeploy(deployer, app, counts: dict, *, watch=None):
    """Run ``counts`` (type -> N) processes of ``app``'s types from now on: its current
    version deployed again so (each new web process health-checked before the switch).
    Refuses a type the current version lacks, a singleton, and a web process on
    ``$SARGE_SOCKET`` scaled. Returns the new instance."""
    state = deployer.state(check_app_name(app))
    if state.current is None:
        raise DeployError(f"{app} has no current instance to scale")
    current = deployer.home.get(state.current)
    counts = check_scale(counts) | {t: 1 for t, n in counts.items() if n == 1}
    types = sorted({base_type(p) for p in current.processes})
    declared = Manifest.from_dict(current.manifest)
    for name in counts:
        if name not in types:
            raise UsageError(f"{app} has no process type {name!r} (its Procfile has "
                             f"{', '.join(types)})")
        if counts[name] > 1 and declared.options(name).singleton:
            raise UsageError(f"{name} is a singleton (sarge-app.toml): one runs at most")
    if counts.get("web", 1) > 1 and current.unix_socket:
        raise UsageError("web listens on $SARGE_SOCKET, which one process holds: have it "
                         "listen on $PORT to scale it (each process gets its own)")
    scale = {t: n for t, n in {**state.scale, **counts}.items() if n != 1}
    return deployer.deploy(deployer.home.instance_dir(current.id), app, watch=watch,
                           exclude=declared.writable + declared.persistent,
                           revision=current.revision, scale=scale)
