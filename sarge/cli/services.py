"""``sarge HOME service``: an app's backing services (Redis, Memcached, RabbitMQ)."""

from __future__ import annotations

import sys

import click

from ..errors import UsageError
from ..instance import check_app_name
from .context import pass_home
from .output import echo, echo_json, note, table

KINDS = click.Choice(["redis", "memcached", "rabbitmq"])


def _services(ctx):
    from ..services.manager import Services

    return Services(ctx.home, progress=note)


@click.group()
def service():
    """An app's backing services: one Redis, Memcached or RabbitMQ server per app.

    \b
    Each runs under the home's supervisord as a group of its own (svc.APP.KIND),
    as the app's user, on a port of the home's range bound to 127.0.0.1, its
    data in var/data/APP/KIND. Every instance of the app gets its URLs in its
    environment when a process starts (REDIS_URL, MEMCACHED_SERVERS, AMQP_URL,
    CELERY_BROKER_URL), passwords in them; deploys and rollbacks never restart
    a service. The servers are Debian's packages: redis-server, memcached,
    rabbitmq-server.
    """


@service.command("add")
@click.argument("app", metavar="NAME")
@click.argument("kind", metavar="KIND", type=KINDS)
@click.option("--version", "version", metavar="VERSION",
              help="Refuse unless the installed server is this version (a prefix: 7, 7.0).")
@click.option("--memory", type=click.IntRange(1, 1 << 20), metavar="MIB",
              help="Memcached's memory cap, in MiB [default: 64].")
@click.option("--socket", is_flag=True,
              help="Memcached on a unix socket only the app's user reaches, not a port.")
@click.option("--json", "as_json", is_flag=True, help="Print the service as JSON.")
@pass_home
def add(ctx, app, kind, version, memory, socket, as_json):
    """Add and start a KIND server (redis, memcached, rabbitmq) for NAME.

    \b
    Redis: AOF on, a password. Memcached: a memory cap (--memory). RabbitMQ: a
    node of its own with a virtual host and user named NAME. Its URLs reach
    the app's instances as their processes start: deploy (or `config NAME
    --deploy`) to give them to the running version. Prints the service's id.
    """
    services = _services(ctx)
    done = services.add(app, kind, version=version, memory=memory, socket=socket)
    row = next(r for r in services.listing(app) if r["id"] == done.id)
    if as_json:
        echo_json(row)
        return
    note(f"{done.id} runs {kind} {done.version} on {done.address}, data in "
         f"{row['data_dir']}; variables: {', '.join(sorted(row['variables']))}")
    echo(done.id)


@service.command("list")
@click.argument("app", metavar="[NAME]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_home
def list_(ctx, app, as_json):
    """List the backing services (NAME's), passwords hidden."""
    rows = _services(ctx).listing(app)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        note("no backing services" + (f" for {app}" if app else ""))
        return
    table(["ID", "APP", "KIND", "VERSION", "PORT", "STATE", "VARIABLES"],
          [[r["id"], r["app"], r["kind"], r["version"], r["port"] or "socket", r["state"],
            " ".join(f"{k}={v}" for k, v in sorted(r["variables"].items()))] for r in rows])


@service.command("remove")
@click.argument("app", metavar="NAME")
@click.argument("kind", metavar="KIND", type=KINDS)
@click.option("--data", is_flag=True, help="Remove its data too (var/data/NAME/KIND).")
@click.option("--yes", is_flag=True, help="Do not ask before removing the data.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_home
def remove(ctx, app, kind, data, yes, as_json):
    """Stop and remove NAME's KIND server (its data kept unless --data).

    Its program, configuration, ports and record go. Its data stays in
    var/data/NAME/KIND unless --data is given (a service added again then
    finds it). The app's instances keep the URLs they were started with
    until their next deploy.
    """
    if data and not yes:
        path = ctx.home.service_data_dir(check_app_name(app), kind)
        if sys.stdin is None or not sys.stdin.isatty():
            raise UsageError(f"--data removes {path} for good: add --yes to do it "
                             "without a terminal")
        if not click.confirm(f"Remove {app}'s {kind} and its data in {path} for good?",
                             err=True):
            raise click.Abort()
    done = _services(ctx).remove(app, kind, data=data)
    if as_json:
        echo_json(done)
        return
    note(f"{done['service']} removed" + ("" if data else f"; its data is kept in "
                                         f"{done['data_dir']}"))


@service.command("backup")
@click.argument("app", metavar="NAME")
@click.argument("kind", metavar="KIND", type=KINDS)
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Where to write the backup (mode 0600; replaced atomically).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@pass_home
def backup(ctx, app, kind, output, as_json):
    """Write a consistent backup of NAME's KIND server's data to FILE.

    Redis: the RDB that a BGSAVE writes (copy it in place of dump.rdb, with
    appendonly off, to restore). RabbitMQ: its definitions (vhost, users,
    queues, exchanges, bindings, policies), as `rabbitmqctl export_definitions`
    writes them. Memcached holds a cache only: it has no backup.
    """
    done = _services(ctx).backup(app, kind, output)
    if as_json:
        echo_json(done)
        return
    note(f"{done['service']}: {done['bytes']} bytes written to {done['path']} "
         f"({done['format']})")


COMMANDS = (service,)
