"""The rolling deploy, route and rollback, as small named steps.

A deploy: new instance -> unpack -> environment -> release -> start -> health
-> switch -> drain -> stop old -> clean up. Until the switch, any failure
destroys the new instance and leaves the front-end alone, so the old version
keeps serving. The app's state (``var/apps/APP.json``) is saved before nginx
is reloaded, so an interrupted deploy never leaves nginx routing to an
instance sarge does not know as current or kept; the next deploy of the app
removes whatever an interrupted one left.

- :mod:`.deployer`: :class:`Deployer`, the commands (deploy, route, rollback,
  destroy, config --deploy);
- :mod:`.plan`: the checks of a deploy's front-end address, before anything;
- :mod:`.prepare`: the steps that make a new instance ready (unpack to start);
- :mod:`.switch`: the apps' states and locks, the health check, the switch;
- :mod:`.steps`: named, timed steps whose failures say which step failed.
"""

from .deployer import Deployer
from .plan import can_bind

__all__ = ["Deployer", "can_bind"]
