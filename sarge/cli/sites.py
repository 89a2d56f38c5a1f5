"""The commands of how the front-end serves an app: domains, tls, limits, maintenance; and
the options of ``deploy`` that set the same things (stored with the app like
``--listen``)."""

from __future__ import annotations

import click

from ..instance import check_app_name
from ..site import TLS
from .context import pass_home
from .output import echo, echo_json, note


def site_options(command):
    """The front-end options of ``deploy``."""
    options = [
        click.option("--domain", "domains", multiple=True, metavar="DOMAIN",
                     help="A host name the app answers for (repeat it; *.example.com for "
                          "every subdomain). Apps with domains share a port [default "
                          "--listen with domains: 0.0.0.0:80]. Replaces the app's domains."),
        click.option("--check-host", metavar="HOST",
                     help="The Host header of the health check [default: the first "
                          "domain]."),
        click.option("--tls", nargs=2, metavar="CERT KEY", default=None,
                     type=click.Path(dir_okay=False),
                     help="Serve HTTPS with this certificate (full chain) and key "
                          "(e.g. certbot's fullchain.pem privkey.pem)."),
        click.option("--listen-tls", metavar="HOST:PORT",
                     help="Where HTTPS listens [default: 0.0.0.0:443]."),
        click.option("--redirect/--no-redirect", default=None,
                     help="Send plain HTTP to HTTPS (with --tls) [default: redirect]."),
        click.option("--hsts/--no-hsts", default=None,
                     help="Add Strict-Transport-Security to HTTPS answers [default: off]."),
    ]
    command = limit_options(command)
    for option in reversed(options):
        command = option(command)
    return command


def limit_options(command):
    """--body-size, --read-timeout, --buffering/--no-buffering."""
    options = [
        click.option("--body-size", metavar="SIZE",
                     help="The largest request body nginx takes (10m, 1g; 0: no "
                          "limit) [default: 10m]."),
        click.option("--read-timeout", type=int, metavar="SECONDS",
                     help="How long nginx waits for the app's answer, or between two "
                          "reads of it (long-polls, WebSockets) [default: 120]."),
        click.option("--buffering/--no-buffering", default=None,
                     help="Buffer requests and answers in nginx [default: on]; off for "
                          "streamed answers (server-sent events) and uploads."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def site_changes(domains=(), check_host=None, tls=None, listen_tls=None, redirect=None,
                 hsts=None, body_size=None, read_timeout=None, buffering=None) -> dict:
    """The Site changes that ``deploy``'s options ask for."""
    changes = {"domains": domains} if domains else {}
    given = {"check_host": check_host, "body_size": body_size,
             "read_timeout": read_timeout, "buffering": buffering}
    changes.update({k: v for k, v in given.items() if v is not None})
    if tls:
        options = {"listen": listen_tls, "redirect": redirect, "hsts": hsts}
        changes["tls"] = TLS(cert=tls[0], key=tls[1],
                             **{k: v for k, v in options.items() if v is not None})
    elif listen_tls or redirect is not None or hsts is not None:
        raise click.UsageError("--listen-tls, --redirect and --hsts go with --tls CERT KEY "
                               "(or use `sarge HOME tls NAME`)")
    return changes


def _show(state, as_json, changed=None):
    site = state.site
    if as_json:
        echo_json({"app": state.name, "listen": state.listen, **site.to_dict()})
        return
    if changed is not None:
        note(f"{state.name}: {changed}")
    echo(f"listen       {state.listen}")
    echo(f"domains      {', '.join(site.domains) or '(any host: the port is its own)'}")
    if site.tls:
        echo(f"tls          {site.tls.listen} {site.tls.cert} "
             f"(redirect {'on' if site.tls.redirect else 'off'}, "
             f"hsts {'on' if site.tls.hsts else 'off'})")
    else:
        echo("tls          off")
    echo(f"limits       body {site.body_size}, read timeout {site.read_timeout}s, "
         f"buffering {'on' if site.buffering else 'off'}")
    echo(f"maintenance  {'on' if site.maintenance is not None else 'off'}")


def _run(ctx, app, edit, as_json):
    """Apply ``edit`` (None: only show the app's front-end)."""
    deployer = ctx.deployer()
    if edit is None:
        _show(deployer.state(check_app_name(app)), as_json)
        return
    old, new = deployer.change_site(app, edit)
    _show(new, as_json, _edits().describe(old.site, new.site))


@click.command()
@click.argument("app", metavar="NAME")
@click.option("--add", multiple=True, metavar="DOMAIN", help="Add a domain (repeatable).")
@click.option("--remove", multiple=True, metavar="DOMAIN", help="Remove a domain.")
@click.option("--json", "as_json", is_flag=True, help="Print the app's front-end as JSON.")
@pass_home
def domains(ctx, app, add, remove, as_json):
    """Show or change the domains NAME answers for, without a redeploy.

    nginx reloads gracefully; a domain another app has on the same port is refused.
    """
    _run(ctx, app, _edits().domains(add, remove) if add or remove else None, as_json)


@click.command()
@click.argument("app", metavar="NAME")
@click.option("--cert", type=click.Path(dir_okay=False), metavar="FILE",
              help="The certificate (full chain), with --key.")
@click.option("--key", type=click.Path(dir_okay=False), metavar="FILE",
              help="Its private key.")
@click.option("--listen-tls", metavar="HOST:PORT", help="Where HTTPS listens.")
@click.option("--redirect/--no-redirect", default=None, help="Send plain HTTP to HTTPS.")
@click.option("--hsts/--no-hsts", default=None, help="Add Strict-Transport-Security.")
@click.option("--reload", "reload", is_flag=True,
              help="Read the same files again (after a renewal) and reload gracefully.")
@click.option("--off", is_flag=True, help="Stop serving HTTPS.")
@click.option("--json", "as_json", is_flag=True, help="Print the app's front-end as JSON.")
@pass_home
def tls(ctx, app, cert, key, listen_tls, redirect, hsts, reload, off, as_json):
    """Show or change NAME's certificate and HTTPS options, without a redeploy.

    \b
    The files are checked (a PEM pair, the key the certificate's, not expired)
    and copied into etc/tls/NAME/ before nginx reloads. After certbot renews:
      certbot renew --deploy-hook "HOME/bin/sarge tls NAME --reload"
    """
    if (cert is None) != (key is None):
        raise click.UsageError("give --cert and --key together")
    if off and (cert or reload or listen_tls or redirect is not None or hsts is not None):
        raise click.UsageError("--off goes alone")
    given = cert or listen_tls or redirect is not None or hsts is not None or reload or off
    _run(ctx, app, _edits().tls(cert, key, listen=listen_tls, redirect=redirect, hsts=hsts,
                             reload=reload, off=off) if given else None, as_json)


@click.command()
@click.argument("app", metavar="NAME")
@limit_options
@click.option("--json", "as_json", is_flag=True, help="Print the app's front-end as JSON.")
@pass_home
def limits(ctx, app, body_size, read_timeout, buffering, as_json):
    """Show or change NAME's request limits in nginx, without a redeploy."""
    given = (body_size, read_timeout, buffering) != (None, None, None)
    _run(ctx, app, _edits().limits(body_size=body_size, read_timeout=read_timeout,
                                buffering=buffering) if given else None, as_json)


@click.command()
@click.argument("app", metavar="NAME")
@click.argument("switch", type=click.Choice(["on", "off"]), metavar="on|off")
@click.option("--message", metavar="TEXT", help="The page's text [default: NAME is down "
              "for maintenance; please try again in a few minutes.].")
@click.option("--json", "as_json", is_flag=True, help="Print the app's front-end as JSON.")
@pass_home
def maintenance(ctx, app, switch, message, as_json):
    """Answer NAME's requests with a 503 page (and Retry-After), or serve again.

    The health check path still reaches the app, which keeps running; a deploy
    during maintenance keeps the page until `maintenance NAME off`.
    """
    if message is not None and switch == "off":
        raise click.UsageError("--message goes with on")
    _run(ctx, app, _edits().maintenance(switch == "on", message), as_json)


COMMANDS = (domains, tls, limits, maintenance)


def _edits():
    """:mod:`sarge.deploy.site`, imported when a command runs: ``deploy`` shares this
    module's options, and the deploy machinery is most of a command's start-up."""
    from ..deploy import site

    return site
