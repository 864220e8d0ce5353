"""`/ledgersync staff [add|remove|role] …`: a firm's people, changed by its admins.

A password can't be typed safely in Slack, so `staff add` links the mentioned Slack
user at once: the admin vouches for a colleague in the firm's own workspace."""

from __future__ import annotations

import re

from core.firms import access, firms
from core.firms.access import Actor
from core.platform.errors import InvalidInput

from . import parse, views

# A user as Slack escapes a mention in a command's text (`should_escape: true`).
MENTION = re.compile(r"<@([UW][A-Z0-9]{2,31})(?:\|[^<>]*)?>")
ADD_USAGE = "`/ledgersync staff add @colleague their@email.com [admin|staff]`"
ROLE_USAGE = "`/ledgersync staff role <email> admin|staff`"
QUOTES = "\"'“”‘’"


def staff(command: parse.Command, actor: Actor, meta) -> dict:
    users = MENTION.findall(command.rest)
    words = [w.strip(QUOTES) for w in MENTION.sub(" ", command.rest).split()]
    words = [w for w in words if w]
    subs = [w for w in words if w.lower() in SUBCOMMANDS]
    if words and not subs:
        raise InvalidInput("`/ledgersync staff` lists your colleagues; add, remove and "
                           "role change them (see `/ledgersync help`)")
    if subs:
        words.remove(subs[0])
    handler = SUBCOMMANDS[subs[0].lower() if subs else "list"]
    return handler(words, users, actor, command.firm)


def role(command: parse.Command, actor: Actor, meta) -> dict:
    """`/ledgersync role <email> admin|staff`: the older name of `staff role`."""
    return set_role(command.words, [], actor, command.firm)


def list_staff(words, users, actor: Actor, firm_name) -> dict:
    actor.require("staff")
    firm = actor.firm_for(firm_name)
    access.looked_up(actor, firm, "staff")
    return views.staff_list(firm.name, firms.staff_of(firm))


def add(words, users, actor: Actor, firm_name) -> dict:
    actor.require("team")
    actor.firm_for(firm_name)  # a firm:… other than their own finds nothing
    roles = [w.lower() for w in words if w.lower() in firms.ROLES]
    emails = [w for w in words if w.lower() not in firms.ROLES]
    if len(users) != 1 or len(emails) != 1 or len(roles) > 1:
        raise InvalidInput(f"Mention one colleague and give their email: {ADD_USAGE}")
    added = access.add_colleague(actor, users[0], emails[0], (roles or ["staff"])[0])
    return views.message(f"Added {added.email} as {added.role}", [views.section(
        f":white_check_mark: Added <@{users[0]}> ({views.esc(added.email)}) as "
        f"*{added.role}*; they can use /ledgersync now."), views.context(
        "They have no password yet: `ledgersync staff password` sets one "
        "(their Slack link then ends until they connect with it).")])


def remove(words, users, actor: Actor, firm_name) -> dict:
    actor.require("team")
    if len(words) != 1:
        raise InvalidInput("Which colleague? `/ledgersync staff remove <email>`")
    firm = actor.firm_for(firm_name)
    removed = firms.remove_staff(firm, words[0], actor=actor.label)
    return views.message(f"Removed {removed.email}", [views.section(
        f":white_check_mark: Removed {views.esc(removed.email)} from "
        f"{views.esc(firm.name)}; they can no longer sign in or use /ledgersync.")])


def set_role(words, users, actor: Actor, firm_name) -> dict:
    actor.require("roles")
    if len(words) != 2 or words[1].lower() not in firms.ROLES:
        raise InvalidInput(ROLE_USAGE)
    firm = actor.firm_for(firm_name)
    changed = firms.set_role(firm, words[0], words[1].lower(), actor=actor.label)
    return views.message(f"{changed.email} is now {changed.role}", [views.section(
        f":white_check_mark: {views.esc(changed.email)} is now *{changed.role}*.")])


SUBCOMMANDS = {"list": list_staff, "add": add, "remove": remove, "role": set_role}
