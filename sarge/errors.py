"""The errors sarge raises; each message is what the operator reads.

::

    SargeError
     ├── UsageError            bad input on the command line (JSON, names, ids)
     ├── HomeError             the home folder is missing, not initialized, or unfit
     ├── SettingsError         etc/sarge.toml (or another state file) cannot be used
     ├── InstanceNotFound      no instance with that id in the home
     ├── PortsExhausted        every port of the home's range is taken
     ├── PortTaken             another program listens on an instance's or nginx's port
     ├── NotStartable          the instance has no executable ``server``
     ├── RenderError           a value cannot be written safely into a config file
     ├── BuildError            the source cannot be unpacked, parsed or installed
     │    └── ManifestMismatch      a file differs from the archive's sarge-manifest.json
     ├── PackageError          a source cannot be validated or packaged
     │    └── NotDeployable         validate found errors: nothing was packaged
     ├── DeployError           a deploy step failed (the old version keeps serving)
     ├── FrontendError         nginx is missing, or refused its configuration
     ├── ServiceError          a backing service cannot be added, reached, backed up or removed
     ├── SupervisorError       supervisord refused or failed a request (``code``: its fault)
     │    ├── SupervisordNotRunning   nothing answers on the home's socket
     │    ├── SupervisordShuttingDown supervisord is stopping its processes to exit
     │    └── ProcessFailed           the process did not start or stop as asked
     └── FleetError            sarge-fleet (:mod:`sarge.fleet`): many hosts over SSH
          ├── FleetFileError          fleet.toml cannot be read or is invalid (exit 2)
          ├── HostUnreachable         a host does not answer over SSH, or has no sarge
          ├── RolloutLocked           another rollout of this fleet is running
          └── RolloutFailed           a host of a wave failed: the rollout stopped

The command line prints ``str(error)`` on one line of stderr and exits with the
error's ``exit_code``: 2 for a :class:`UsageError` (as click's own usage errors),
7 for :class:`SupervisordNotRunning` (as ``supervisorctl``), 1 for the rest.
Nothing here imports from the rest of sarge.
"""


class SargeError(Exception):
    """Base of every error sarge raises on purpose."""

    exit_code = 1


class UsageError(SargeError):
    """The input given to a command is not acceptable."""

    exit_code = 2


class HomeError(SargeError):
    """The home folder cannot be used as asked."""


class SettingsError(SargeError):
    """A settings or state file of the home cannot be read or is invalid."""


class InstanceNotFound(SargeError):
    """No instance with this id exists in the home."""

    def __init__(self, instance_id):
        super().__init__(
            f"no instance {instance_id!r} in this home; `sarge HOME list` shows the instances"
        )
        self.instance_id = instance_id


class PortsExhausted(SargeError):
    """Every port of the home's range is allocated."""


class PortTaken(SargeError):
    """What answers on a port sarge gave out is not the process it gave it to.

    ``uid`` and ``program``: the user and the name of the process that holds it, when
    one was seen."""

    def __init__(self, message, *, uid=None, program=None):
        super().__init__(message)
        self.uid, self.program = uid, program


class NotStartable(SargeError):
    """The instance cannot be started as it is (no executable ``server``)."""


class RenderError(SargeError):
    """A value cannot be written into a generated file without changing its meaning."""


class BuildError(SargeError):
    """The source cannot be unpacked, its Procfile read, or its requirements installed."""


class ManifestMismatch(BuildError):
    """A file of an unpacked archive is not the one its ``sarge-manifest.json`` lists
    (changed, missing, or added): the deploy is refused before anything runs."""


class PackageError(SargeError):
    """A source cannot be read, validated or packaged as asked (``sarge validate``,
    ``sarge package``)."""


class NotDeployable(PackageError):
    """``sarge package`` refused a source that validate found errors in; ``findings``
    holds them all (:class:`sarge.package.findings.Finding`)."""

    def __init__(self, message, findings=()):
        super().__init__(message)
        self.findings = list(findings)


class DeployError(SargeError):
    """A step of a deploy, route or rollback failed; the old version keeps serving.

    ``step`` names the step that failed, when one did."""

    def __init__(self, message, *, step=None):
        super().__init__(message)
        self.step = step


class FrontendError(SargeError):
    """nginx is missing, its configuration is invalid, or it cannot be reloaded."""


class ServiceError(SargeError):
    """A backing service (Redis, Memcached, RabbitMQ) cannot be made, started, reached,
    backed up or removed as asked."""


class SupervisorError(SargeError):
    """supervisord answered with a fault, or could not be talked to.

    ``code`` is the fault's code (one of :class:`sarge.supervisord.faults.Faults`), or None when
    supervisord did not answer with a fault.
    """

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class SupervisordNotRunning(SupervisorError):
    """Nothing answers on the home's supervisord socket."""

    exit_code = 7  # supervisorctl's status when it cannot reach supervisord


class SupervisordShuttingDown(SupervisorError):
    """supervisord answers every request with SHUTDOWN_STATE: it is stopping its
    processes, and exits once they are gone."""


class ProcessFailed(SupervisorError):
    """A process did not reach the state it was asked for."""


class FleetError(SargeError):
    """sarge-fleet could not do what it was asked on the hosts of a fleet."""


class FleetFileError(FleetError):
    """The fleet file (``fleet.toml``) or a host selection in it cannot be used."""

    exit_code = 2


class HostUnreachable(FleetError):
    """A host does not answer over SSH, or its home's ``bin/sarge`` does not run."""


class RolloutLocked(FleetError):
    """Another rollout of the same fleet holds its lock."""


class RolloutFailed(FleetError):
    """A host of a wave failed; no further host was touched. ``report`` is the
    :class:`~sarge.fleet.rollout.Report` of what each host did."""

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report
