"""The :class:`Deployer`: deploy, route, rollback, and the destroy an app's state allows."""

from __future__ import annotations

import os
import time

from .. import build, pythons, unpack
from ..apps import AppState, check_path, check_scale, check_timeout, load_state, parse_listen
from ..commands import run_as as user_for
from ..errors import DeployError, HomeError, SargeError, UsageError
from ..files import File, locked, write_file
from ..frontend import frontend_for
from ..instance import check_app_name
from ..notify import Notifier
from ..ports import check_holder
from ..supervisord import states
from ..variables import configure
from .cleanup import clean
from .failure import abandon
from .journaled import journaled
from .plan import can_bind, plan
from .prepare import prepare, start_detail
from .redeploy import configure_and_redeploy, scale_and_redeploy
from .singletons import overlapping, start_singletons
from .site import change as change_site
from .site import resolve
from .steps import Steps
from .switch import DRAINED, Switch
from .undeploy import undeploy
from .watch import watched


class Deployer:
    """Deploys, routes and rolls back the apps of ``home``.

    ``progress(step, seconds, detail)`` is told of each finished step;
    ``frontend`` and ``environments`` default to the home's nginx and
    ``var/envs``; ``can_bind`` checks a new front-end address; ``check_holder``
    (:func:`sarge.ports.check_holder`) proves an instance's port is its own;
    ``notifier`` tells people of each change (:class:`~sarge.notify.Notifier`); ``ask``
    (a question -> yes or no; None without a terminal) decides a ^C in a watch window;
    ``fault`` names a point where sarge kills itself with SIGKILL, for the
    fault-injection tests (:class:`~sarge.deploy.steps.Steps`): a step's name,
    ``environment:install`` or ``switch:reload`` (after the app's state is saved,
    before nginx reloads).
    """

    def __init__(self, home, *, progress=None, frontend=None, environments=None,
                 clock=time.monotonic, sleep=time.sleep, can_bind=can_bind,
                 check_holder=check_holder, fault=None, notifier=None, ask=None):
        self.home = home
        self.can_bind = can_bind
        self.steps = Steps(progress=progress, clock=clock, fault=fault)
        self._check_holder = check_holder
        self._frontend = frontend
        self._environments = environments
        self._notifier = notifier
        self.sleep = sleep
        self.ask = ask
        self._switch = None

    @property
    def frontend(self):
        if self._frontend is None:
            self._frontend = frontend_for(self.home, self.home.supervisor, self.home.settings,
                                          python=self.home.python)
        return self._frontend

    @property
    def environments(self):
        if self._environments is None:
            self._environments = build.Environments.of(
                self.home.envs_dir, self.home.settings, self.home.python)
        return self._environments

    @property
    def notifier(self) -> Notifier:
        """Who is told of each change (:mod:`sarge.notify`, ``[notify]``)."""
        if self._notifier is None:
            self._notifier = Notifier(self.home.settings, self.home.outbox_dir)
        return self._notifier

    @property
    def switch(self) -> Switch:
        if self._switch is None:
            self._switch = Switch(self.home, self.frontend, self.steps, self._check_holder)
        return self._switch

    def state(self, app) -> AppState:
        return self.switch.state(app)

    # -- deploy ------------------------------------------------------------------------------

    @journaled("deploy", app_arg=1, source_arg=0)
    def deploy(self, source, app, *, listen=None, check=None, timeout=None, watch=None,
               exclude=(), site=None, revision=None, scale=None):
        """Deploy ``source`` (a folder or a tar archive) as the new version of ``app``
        (``exclude``: paths of a folder source left out; ``site``: changes of its
        :class:`~sarge.site.Site`, :func:`sarge.site.checked`; ``revision``: what its
        code's archive said, for a redeploy's copy; ``scale``: its new process counts,
        :func:`sarge.apps.check_scale`)."""
        home, steps, switch = self.home, self.steps, self.switch
        home.check()
        check_app_name(app)
        source = os.path.abspath(source)
        unpack.source_kind(source)  # refuse what is not a source before making anything
        listen = parse_listen(listen) if listen is not None else None
        check = check_path(check) if check is not None else None
        timeout = check_timeout(timeout) if timeout is not None else None
        site = resolve(site or {})
        scale = check_scale(scale) if scale is not None else None
        settings = home.settings
        plan(switch, settings, app, listen, check, timeout, self.can_bind, site, scale)
        run_as = user_for(home, settings, app)  # and a user the app cannot run as
        python = pythons.configured(settings, home.python)  # one that user can run
        pythons.check_runnable(python.path, python.why, run_as,
                               pythons.fix_hint(home.settings_path))
        self.frontend.check_user()
        home.supervisor.processes()  # supervisord must be running: say so now
        with switch.app_lock(app):
            old, state = plan(switch, settings, app, listen, check, timeout, self.can_bind, site,
                              scale)
            self._clean(old, keep_all_previous=True)  # and stops what a killed watch left
            home.log_action("deploy", f"{app} from {source}")
            with steps.step("new instance") as step:
                instance = home.lifecycle.new(app, origin="deploy")
                step["detail"] = f"{instance.id}, port {instance.port}"
            try:
                instance = prepare(self, instance, source, run_as, python, exclude, revision,
                                   state.scale)
                switch.health_check(instance, state)
                new = state.promote(instance.id)
                with steps.step("switch") as step:
                    drain = switch.switch(old, new)
                    step["detail"] = f"{state.listen} -> {switch.target(instance)}"
            except BaseException as exc:
                raise abandon(home, instance.id, exc, app, old.current) from exc
            self._finish(old, new, drain, watch, failed=lambda exc: abandon(
                home, instance.id, exc, app, old.current))
        home.log_action("deployed", f"{app} {instance.id}")
        return home.get(instance.id)

    def _finish(self, old, new, drain, watch=None, failed=None):
        """After a switch: drain, watch the new version (back to ``old`` if it fails:
        ``failed()`` then removes it, :mod:`sarge.deploy.watch`), stop the instance that
        served before, clean up."""
        old_current = old.current
        with self.steps.step("drain") as step:
            step["detail"] = DRAINED[self.frontend.drain(drain, self._pids(old_current))]
        seconds = self.home.settings.watch if watch is None else watch
        if seconds:
            watched(self, old, new, seconds, failed)
        if old_current and old_current != new.current:
            with self.steps.step("stop old") as step:
                self.home.lifecycle.stop(old_current)
                step["detail"] = old_current
        start_singletons(self.home, self.steps, self.home.get(new.current))
        with self.steps.step("clean up") as step:
            removed = self._clean(new)
            step["detail"] = f"removed {', '.join(removed)}" if removed else "nothing to remove"

    def _pids(self, instance_id) -> set:
        """The pids of an instance's processes (none for None, or one gone)."""
        try:
            return self.switch.pids(self.home.get(instance_id)) if instance_id else set()
        except SargeError:
            return set()

    def _clean(self, state: AppState, keep_all_previous: bool = False) -> list:
        """Destroy what the app no longer needs (:func:`sarge.deploy.cleanup.clean`)."""
        return clean(self, state, keep_all_previous)

    # -- route, rollback, destroy ----------------------------------------------------------------

    @journaled("route")
    def route(self, app, instance_id, *, watch=None):
        """Point the front-end of ``app`` at its running instance ``instance_id``."""
        check_app_name(app)
        instance = self.home.get(instance_id)
        if instance.application_name != app:
            raise UsageError(f"{instance.id} is an instance of {instance.application_name}, "
                             f"not of {app}")
        with self.switch.app_lock(app):
            old = self.state(app)
            if old.listen is None:
                raise UsageError(f"{app} has no front-end address yet: deploy it with --listen")
            if not self._running(instance.id):
                raise DeployError(f"{instance.id} is not running; start it with "
                                  f"`sarge HOME start {instance.id}` first")
            self.switch.health_check(instance, old)
            new = old.promote(instance.id)
            with self.steps.step("switch"):
                drain = self.switch.switch(old, new)
            with self.steps.step("drain"):
                self.frontend.drain(drain)
            seconds = self.home.settings.watch if watch is None else watch
            if seconds:
                watched(self, old, new, seconds, lambda exc: DeployError(
                    f"route of {app} to {instance.id} failed at step 'watch': {exc}; "
                    f"{old.current} serves again", step="watch"))
            start_singletons(self.home, self.steps, instance)
        self.home.log_action("route", f"{app} {instance.id}")
        return instance

    def _running(self, instance_id) -> bool:
        info = self.home.supervisor.process(instance_id + ":web")
        return info is not None and info["statename"] in states.UP

    @journaled("rollback")
    def rollback(self, app, *, watch=None):
        """Start the previous instance of ``app``, check it, switch to it, stop the current."""
        self.home.check()
        check_app_name(app)
        with self.switch.app_lock(app):
            old = self.state(app)
            if not old.previous:
                raise DeployError(f"{app} has no previous instance to roll back to")
            target = self.home.get(old.previous[0])
            was_running = self._running(target.id)
            try:
                with self.steps.step("start") as step:
                    self.home.lifecycle.start(target.id, wait=False,
                                              processes=overlapping(target))
                    step["detail"] = f"{target.id}: {start_detail(target)}"
                self.switch.health_check(target, old)
                new = old.promote(target.id)
                with self.steps.step("switch"):
                    drain = self.switch.switch(old, new)
            except SargeError as exc:
                raise self._failed_rollback(app, target, exc, was_running) from exc
            self._finish(old, new, drain, watch, failed=lambda exc: self._failed_rollback(
                app, target, exc, was_running))
        self.home.log_action("rollback", f"{app} {target.id}")
        return target

    def _failed_rollback(self, app, target, exc, was_running) -> DeployError:
        """The error of a rollback that failed, after leaving its target as it was: stopped,
        and stopped at boot, unless it ran before (a stop that fails too is said)."""
        also = ""
        if not was_running:
            try:
                self.home.lifecycle.stop(target.id)
            except SargeError as error:
                also = f" Stopping {target.id} again failed too: {error}."
        step = exc.step if isinstance(exc, DeployError) and exc.step else "rollback"
        return DeployError(f"rollback of {app} to {target.id} failed at step '{step}': {exc}. "
                           f"The current version keeps serving.{also}", step=step)

    def destroy(self, instance_id) -> None:
        """Destroy an instance as its app's state allows: never the one its front-end routes
        to; one kept for rollback is taken off the app's list. Waits for a deploy of the
        app that is running (the app's deploy lock)."""
        instance = self.home.get(instance_id)
        self.home.supervisor.process(instance.id + ":web")  # says so now if it is down
        app = instance.application_name
        with locked(self.home.deploy_lock_path(app)):
            state = load_state(self.home.app_state_path(app), app)
            if state.current == instance.id:
                raise HomeError(f"{instance.id} is the instance {app}'s front-end routes "
                                f"to; deploy or route {app} to another one first")
            try:
                self.home.lifecycle.destroy(instance)
            finally:
                if instance.id in state.previous:  # unfinished too: its code is gone
                    state = state.replace(
                        previous=tuple(p for p in state.previous if p != instance.id))
                    write_file(File(self.home.app_state_path(app), state.to_json()))

    @journaled("undeploy")
    def undeploy(self, app, *, data: bool = False) -> dict:
        """Remove ``app``: its route, instances, state, variables, unused virtualenvs, and
        with ``data`` its data folder (:func:`sarge.deploy.undeploy.undeploy`)."""
        return undeploy(self, app, data=data)

    @journaled("scale")
    def scale(self, app, counts: dict, *, watch=None):
        """Run ``counts`` processes of ``app``'s types, its current version deployed again
        (:func:`sarge.deploy.redeploy.scale_and_redeploy`); returns the new instance."""
        return scale_and_redeploy(self, app, counts, watch=watch)

    @journaled("site")
    def change_site(self, app, edit) -> tuple:
        """Change how the front-end serves ``app`` (:func:`sarge.deploy.site.change`)."""
        return change_site(self, app, edit)

    # -- the app's variables -----------------------------------------------------------------------

    @journaled("config")
    def set_variables(self, app, assignments=(), unset=()) -> dict:
        """Change the app's variables for its next deploy; return them all."""
        return configure(self.home, app, assignments, unset)

    @journaled("config")
    def configure(self, app, assignments=(), unset=(), *, watch=None):
        """Change the app's variables and redeploy its current version with them
        (:func:`sarge.deploy.redeploy.configure_and_redeploy`); returns the new instance."""
        return configure_and_redeploy(self, app, assignments, unset, watch=watch)
