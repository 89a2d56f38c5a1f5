"""sarge's extension of supervisord's XML-RPC interface, loaded by the home's supervisord.

supervisord can only learn of a new program by ``reloadConfig``, which
re-reads every program file of the home: about 2 ms per file, over a second
at 500 instances, on every ``new``.  ``sarge.addProgramFile(path)`` reads just
the one file, with supervisor's own parser and expansions, and adds its
group, so creating an instance costs the same at any size of home.  It is
declared in ``etc/supervisord.conf`` as ``[rpcinterface:sarge]``; the client
falls back to ``reloadConfig`` when a supervisord does not have it.

``sarge.getLastExit(name)`` says how a process last exited ("exit status 3",
"terminated by SIGKILL"): supervisord forgets the status of a process that exits
before ``startsecs`` (``getProcessInfo`` reports 0 for it, in BACKOFF and FATAL), so
the extension, once loaded, has each process remember what it was told when it was
reaped (:func:`remember_exits`). The method came after version 1 of these methods,
and adds to them: a supervisord started before it answers UNKNOWN_METHOD, and sarge
then reads supervisord's log instead (:mod:`sarge.supervisord.exits`).

It also writes a line into supervisord's log at every change of a process's state,
naming the process as ``ID:TYPE`` (:func:`log_state`), which supervisord's own lines
do not: the crash watch reads the exit status of the right instance there.

This module runs inside supervisord; it imports supervisor, never the rest of sarge.
"""

import os

#: The version of the ``sarge.*`` methods; the client refuses a supervisord that
#: reports another (it was started before sarge was upgraded). Change it with them.
API_VERSION = "1"


class SargeNamespace:
    """The ``sarge.*`` XML-RPC methods."""

    def __init__(self, supervisord):
        self.supervisord = supervisord

    def getAPIVersion(self):
        """Return the version of the sarge namespace.

        @return string version
        """
        return API_VERSION

    def addProgramFile(self, path):
        """Read one program file and add the process groups it defines.

        @param string path   absolute path of a file under the include folder
        @return array names  the groups added
        """
        from supervisor.options import UnhosedConfigParser
        from supervisor.xmlrpc import Faults, RPCError

        options = self.supervisord.options
        parser = UnhosedConfigParser()
        parser.expansions = options.environ_expansions
        try:
            if not parser.read(path):
                raise RPCError(Faults.NO_FILE, path)
            parser.expand_here(os.path.abspath(os.path.dirname(path)))
            groups = options.process_groups_from_parser(parser)
        except ValueError as exc:
            raise RPCError(Faults.CANT_REREAD, f"{path}: {exc}") from exc
        added = []
        for group in groups:
            # Keep supervisord's view of the configuration in step, as reloadConfig would.
            options.process_group_configs = [
                g for g in options.process_group_configs if g.name != group.name
            ] + [group]
            if not self.supervisord.add_process_group(group):
                raise RPCError(Faults.ALREADY_ADDED, group.name)
            added.append(group.name)
        return added


    def getLastExit(self, name):
        """Say how a process last exited, as supervisord's log says it.

        @param string name   the process's name, GROUP:NAME
        @return string how   "exit status 3", "terminated by SIGKILL"; "" when it has not exited
        """
        from supervisor.xmlrpc import Faults, RPCError

        group, _, process = name.partition(":")
        found = self.supervisord.process_groups.get(group)
        if found is None or (process or group) not in found.processes:
            raise RPCError(Faults.BAD_NAME, name)
        return getattr(found.processes[process or group], "sarge_last_exit", "")

    def setAutostart(self, group, autostart):
        """Set autostart of every program of a group in supervisord's configuration, as sarge
        has just written it to the group's file (so that ``supervisorctl update`` does not
        take the group for changed and restart it).

        @param string group      the group's name
        @param boolean autostart the new value
        @return boolean result   always true
        """
        from supervisor.xmlrpc import Faults, RPCError

        configs = [g for g in self.supervisord.options.process_group_configs if g.name == group]
        if group in self.supervisord.process_groups:
            configs.append(self.supervisord.process_groups[group].config)
        if not configs:
            raise RPCError(Faults.BAD_NAME, group)
        for group_config in configs:
            for process_config in group_config.process_configs:
                process_config.autostart = bool(autostart)
        return True


def remember_exits() -> None:
    """Have every supervisord process keep how it last exited (``sarge_last_exit``):
    :meth:`Subprocess.finish` is given the wait status, and its message, for an exit
    before startsecs, goes to the log alone."""
    from supervisor import process
    from supervisor.options import decode_wait_status

    finish = process.Subprocess.finish
    if getattr(finish, "sarge_remembers", False):
        return

    def remembering(self, pid, sts):
        self.sarge_last_exit = decode_wait_status(sts)[1]
        return finish(self, pid, sts)

    remembering.sarge_remembers = True
    process.Subprocess.finish = remembering



def log_state(event) -> None:
    """Log a process's change of state in supervisord's log under its full name: the log
    lines of supervisord itself name the process alone (``spawned: 'web' with pid 12``),
    which every instance has; this one says whose it is::

        web-jCCbfV:web: RUNNING (was STARTING, pid 12)
        web-jCCbfV:web: EXITED (was RUNNING, pid 12, exit status 3, not expected)

    Called by supervisord's event bus, inside supervisord: it never raises."""
    try:
        from supervisor.states import ProcessStates, getProcessStateDescription

        process = event.process
        name = process.config.name
        group = process.group.config.name if process.group is not None else name
        state = process.get_state()
        details = [f"was {getProcessStateDescription(event.from_state)}"]
        if process.pid:
            details.append(f"pid {process.pid}")
        if state in (ProcessStates.EXITED, ProcessStates.STOPPED) and \
                process.exitstatus is not None:
            details.append(f"exit status {process.exitstatus}")
        if state == ProcessStates.EXITED:
            details.append("expected" if event.expected else "not expected")
        if state in (ProcessStates.BACKOFF, ProcessStates.FATAL) and process.spawnerr:
            details.append(str(process.spawnerr))
        process.config.options.logger.info(
            f"{name if group == name else group + ':' + name}: "
            f"{getProcessStateDescription(state)} ({', '.join(details)})")
    except Exception:  # noqa: BLE001 - a log line must never break a change of state
        pass


def make_interface(supervisord, **config):
    """The rpcinterface factory named in supervisord.conf. It also subscribes
    :func:`log_state` to supervisord's process state events (once: supervisord clears
    its subscriptions when it restarts, before it makes its interfaces again)."""
    from supervisor import events

    remember_exits()
    if (events.ProcessStateEvent, log_state) not in events.callbacks:
        events.subscribe(events.ProcessStateEvent, log_state)
    return SargeNamespace(supervisord)
