"""Forgiving parsing of `/ledgersync …` text: quotes optional, words in any order."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MAX_TEXT = 500
CHANNEL_WORDS = {"sms": "sms", "text": "sms", "txt": "sms", "email": "email", "mail": "email",
                 "e-mail": "email"}
PURPOSE_WORDS = {"reconnect": "reconnect", "restore": "reconnect", "connect": "connect"}
FIRM = re.compile(r"""firm:\s*(?:"([^"]*)"|'([^']*)'|(\S+))""", re.IGNORECASE)
# A channel as people give it: a mention as Slack escapes it (`<#C0123ABC|tax-clients>`),
# a link to it (…/archives/C0123ABC/p170…, …/client/T0/C0123ABC), its id, or its name.
CHANNEL_ID = r"[CG][A-Z0-9]{6,}"
CHANNEL_MENTION = re.compile(rf"<#({CHANNEL_ID})(?:\|([^<>]*))?>")
CHANNEL_LINK = re.compile(
    rf"https?://[\w.-]*slack\.com/(?:archives|client/[TE][A-Z0-9]+)/({CHANNEL_ID})(?![A-Za-z0-9])")
CHANNEL_NAME = re.compile(r"#?([\w.-]{1,80})")


@dataclass
class Command:
    name: str
    rest: str = ""
    words: list[str] = field(default_factory=list)
    channel: str | None = None
    purpose: str | None = None
    firm: str | None = None
    force: bool = False

    @property
    def target(self) -> str:
        return " ".join(self.words)


def parse(text: str) -> Command:
    text = (text or "").strip()[:MAX_TEXT]
    firm = None
    match = FIRM.search(text)
    if match:
        firm = next(g for g in match.groups() if g is not None).strip()
        text = (text[: match.start()] + text[match.end():]).strip()
    head, _, rest = text.partition(" ")
    name = head.lower() or "help"
    if name == "client" and rest.split(" ", 1)[0].lower() in {"add", "edit"}:
        verb = rest.split(" ", 1)[0].lower()
        name, rest = f"client {verb}", rest[len(verb):].strip()
    if name in {"invite", "invite_all", "inviteall"} and rest.split(" ", 1)[0].lower() == "all":
        name, rest = "invite-all", rest[3:].strip()
    name = {"invite_all": "invite-all", "inviteall": "invite-all"}.get(name, name)
    command = Command(name=name, rest=rest.strip(), firm=firm)
    for word in _split(rest):
        low = word.lower()
        if low in CHANNEL_WORDS and command.channel is None:
            command.channel = CHANNEL_WORDS[low]
        elif low in PURPOSE_WORDS and command.purpose is None and name == "invite":
            command.purpose = PURPOSE_WORDS[low]
        elif low in {"force", "--force"}:
            command.force = True
        else:
            command.words.append(word)
    return command


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.replace('"', " ").replace("'", " ").split()


@dataclass(frozen=True)
class ChannelRef:
    id: str | None = None  # C… (or G…, an old private channel)
    name: str | None = None  # as shown, or, without an id, to look up


def slack_channel(text: str) -> ChannelRef | None:
    """The channel named in `notify`'s text, or None when it names none."""
    text = (text or "").strip()
    mention = CHANNEL_MENTION.search(text)
    if mention:
        return ChannelRef(mention.group(1), mention.group(2) or None)
    link = CHANNEL_LINK.search(text)
    if link:
        return ChannelRef(link.group(1))
    word = text.strip("<>")
    if re.fullmatch(CHANNEL_ID, word.lstrip("#")):  # names are lower case; ids upper case
        return ChannelRef(word.lstrip("#"))
    name = CHANNEL_NAME.fullmatch(word)
    return ChannelRef(name=name.group(1).lower()) if name else None


SLACK_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def plain_text(mrkdwn: str) -> str:
    """A chat message as the words a person sees: links and mentions as their
    labels, Slack's escapes undone."""
    def label(match):
        target, shown = match.group(1), match.group(2)
        if shown:
            return shown if target.startswith(("@", "#", "!")) else f"{shown} ({target})"
        return target.removeprefix("mailto:").lstrip("@#!")

    text = SLACK_LINK.sub(label, mrkdwn or "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
