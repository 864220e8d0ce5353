"""`/ledgersync firm [set <setting> <value>]` (admins: what the firm shows its clients,
`core.firms.firm_settings`) and `/ledgersync language <client> en|es` (the language a client
reads)."""

from __future__ import annotations

import re

from core.firms import firm_settings
from core.firms.access import Actor
from core.invitations import clients
from core.platform import i18n
from core.platform.errors import InvalidInput

from . import parse, views

SET_USAGE = ("`/ledgersync firm set <setting> <value>`: logo_url https://…, brand_color "
             "#1d4ed8, phone, email, language en|es, digest monday|daily|off; `none` "
             "clears one")
LANGUAGE_USAGE = "`/ledgersync language <client> en|es` (or `firm`: the firm's language)"
# A link or address as Slack escapes it in a command's text: <https://…>, <mailto:a@b|a@b>.
SLACK_LINK = re.compile(r"<([^<>|]+)(?:\|[^<>]*)?>")


def firm(command: parse.Command, actor: Actor, meta) -> dict:
    words = command.rest.split(None, 2)
    if not words:
        actor.require("status")
        return _settings(actor.firm_for(command.firm))
    if words[0].lower() != "set":
        raise InvalidInput(SET_USAGE)
    actor.require("settings")
    if len(words) < 3:
        raise InvalidInput(SET_USAGE)
    changed = firm_settings.set_setting(actor.firm, words[1], unescaped(words[2]),
                                        actor=actor.label)
    key = firm_settings.setting_name(words[1])
    shown = dict(firm_settings.described(changed))[key]
    after = ("The digest follows it from now on (Mondays and days at 9:00 in the firm's "
             "zone, in the notices channel)." if key == "digest"
             else "Clients see it on their pages from now on.")
    return views.message(f"{changed.name}: {key} is now {shown}", [views.section(
        f":white_check_mark: *{views.esc(changed.name)}*: `{key}` is now "
        f"{views.esc(shown)}. {after}")])


def _settings(shown_firm) -> dict:
    lines = [f"`{key}` {views.esc(shown)}" for key, shown in firm_settings.described(shown_firm)]
    return views.message(f"{shown_firm.name}'s settings", [
        views.section(f"*{views.esc(shown_firm.name)}*: what clients see\n" + "\n".join(lines)),
        views.context(SET_USAGE)])


def unescaped(text: str) -> str:
    """A value as the admin typed it: Slack's <…> around a link or an email removed."""
    def plain(match: re.Match) -> str:
        return match.group(1).removeprefix("mailto:").removeprefix("tel:")

    value = SLACK_LINK.sub(plain, text.strip())
    return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def language(command: parse.Command, actor: Actor, meta) -> dict:
    actor.require("client_add")
    words = list(command.words)
    if len(words) < 2:
        raise InvalidInput(LANGUAGE_USAGE)
    wanted = words.pop()
    code = "" if wanted.lower() == "firm" else i18n.parse(wanted)
    client = clients.find(actor.firm_for(command.firm), " ".join(words))
    clients.update(client, language=code, actor=actor.label)
    lang = i18n.of_client(client.refreshed())
    return views.message(f"{client.name} reads {i18n.LANGUAGES[lang]}", [views.section(
        f":speech_balloon: *{views.esc(client.name)}* gets texts, emails and pages in "
        f"{i18n.LANGUAGES[lang]}.")])
