"""`ledgersync firm set` (what the firm shows its clients) and `ledgersync clients
language` (the language a client reads), over `core.firms.firm_settings` and
`core.invitations.clients`."""

from __future__ import annotations

import click

from cli.common import current_firm
from core.firms import firm_settings
from core.invitations import clients
from core.platform import i18n


@click.command("set")
@click.argument("setting", required=False)
@click.argument("value", required=False)
def firm_set(setting, value):
    """Show the firm's settings, or set one.

    logo_url (https), brand_color (#1d4ed8), phone, email (what clients check a link
    with), language (en, es) or digest (monday, daily, off: the digest in the notices
    channel). `none` clears one."""
    firm = current_firm()
    if setting is None:
        for key, shown in firm_settings.described(firm):
            click.echo(f"{key:<12} {shown}")
        return
    if value is None:
        raise click.UsageError(f"Give a value: ledgersync firm set {setting} VALUE "
                               "(or none to clear it)")
    firm = firm_settings.set_setting(firm, setting, value, actor="cli")
    shown = dict(firm_settings.described(firm))[firm_settings.setting_name(setting)]
    click.echo(f"{firm.name}: {firm_settings.setting_name(setting)} is now {shown}.")


@click.command("language")
@click.argument("client")
@click.argument("language")
def clients_language(client, language):
    """Set the language CLIENT reads.

    Their texts, emails and pages: en or es (firm: the firm's)."""
    found = clients.find(current_firm(), client)
    value = "" if language.strip().lower() == "firm" else language
    clients.update(found, language=value, actor="cli")
    lang = i18n.of_client(found.refreshed())
    click.echo(f"{found.name} reads {i18n.LANGUAGES[lang]} ({lang}).")
