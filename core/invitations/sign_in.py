"""Signing in again without a password: a one-time code to the phone number or
email the firm has on file for the client (`/account/sign-in`).

- **Who may.** A client with an account (they accepted a link once) whose firm has
  not revoked their access since (a revoke signs them out until they accept a new
  link). One number or email can belong to clients of several firms: the right code
  then opens a chooser of those accounts, and nothing else.
- **The same answer, the same work.** Asking for a code answers the same whether or
  not the address is anyone's, and does the same work: an attempt is written and
  handed on (`send_code`: on a worker when there is a job queue, the `sign_in_runner`
  port),
  which decides there whether the address is a client's and a code goes. An attempt
  whose code went nowhere opens nothing, so five wrong codes end it exactly as they
  end a real one.
- **The code.** Six digits from `secrets`, valid CODE_TTL (10 minutes), single use,
  MAX_TRIES (5) wrong codes end it. The database keeps an HMAC of it (under
  SECRET_KEY, bound to the attempt), and the browser a random nonce of which the
  database keeps only the SHA-256: a code alone, or the database alone, signs no one
  in. What is handed on, and the message that carries the code, keep it sealed
  (`tokens.seal`, `core.platform.sealed`).
- **Sent as any message.** Through the outbound port, so opt-outs hold: a number
  that replied STOP gets no text; the code goes to the email on file instead when
  there is one, and the page says so (and how to get texts again) for any opted-out
  number, known or not. At most CODES_PER_HOUR (3) codes an hour go to a client;
  the web adds a per-address throttle.
- **Per client, from any address.** WRONG_CODES_PER_DAY (10) wrong codes for one
  client's account in a day, from however many addresses and attempts, close signing
  in with a code (`signin.closed`) until they accept a new link from the firm.
- **Success** is a new server-side session (`core.invitations.sessions`) in the same limited
  account, ended as any other (sign out, revoke, time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from peewee import fn

from core import ports
from core.messaging import optouts, outbound, templates
from core.messaging.templates import Rendered
from core.platform import clock, i18n, names, phones, sealed, tokens
from core.platform.config import settings
from core.platform.db import database
from core.platform.errors import InvalidInput
from core.records import Client, ClientAccount, Event, Firm, Message, SignInAttempt, events

from . import sessions

CODE_TTL = timedelta(minutes=templates.CODE_MINUTES)
MAX_TRIES = 5
CODES_PER_HOUR = 3
WRONG_CODES_PER_DAY = 10  # per client, from any address: then only a new link lets them in
KIND = "signin_code"  # the message kind
# What ends a client's access until they accept a new link.
ACCESS_ENDED = ("invite.revoked", "client.signed_out", "invite.disowned", "signin.closed")


@dataclass(frozen=True)
class Asked:
    """What the page shows after a code was asked for (the same for every address)."""

    nonce: str = field(repr=False)  # the browser keeps it
    shown: str  # the address as given, mostly hidden: (•••) •••-0134, m•••@example.com
    channel: str  # sms | email
    opted_out: bool  # the address asked for no more messages: the page says what to do


@dataclass(frozen=True)
class Checked:
    status: str  # ok | wrong | ended
    clients: list[Client] = field(default_factory=list)  # ok: the accounts it opens
    tries_left: int = 0


# --- asking for a code ----------------------------------------------------------------


def ask(text: str, lang: str = i18n.DEFAULT) -> Asked:
    """A code for the phone number or email in `text`, if a client has it: the attempt
    is written and handed on (`send_code` decides), the same work for any address."""
    channel, address = parse_address(text)
    now = clock.now()
    nonce, code = secrets.token_urlsafe(32), f"{secrets.randbelow(10**6):06d}"
    with database.atomic():
        attempt = SignInAttempt.create(
            digest=_digest(nonce), code_digest="", channel=channel, clients=[],
            created_at=now, expires_at=now + CODE_TTL)
        SignInAttempt.update(code_digest=_code_digest(attempt.id, code)).where(
            SignInAttempt.id == attempt.id).execute()
    opted_out = optouts.is_opted_out(address)
    run = ports.current().sign_in_runner or send_code
    run(attempt.id, tokens.seal(json.dumps([channel, address, code, lang])))
    return Asked(nonce, _hidden(channel, address), channel, opted_out)


def send_code(attempt_id: int, asked: str) -> str:
    """Decide an attempt's code, once however often it runs: it goes to the address
    asked for when clients with access have it (`eligible`) and none of them had
    CODES_PER_HOUR codes this hour, and the attempt then opens their accounts; else
    it goes nowhere and the attempt opens nothing. `asked` is what `ask` sealed."""
    opened = tokens.unseal(asked)
    attempt = SignInAttempt.get_or_none(SignInAttempt.id == attempt_id)
    if opened is None or attempt is None or not _open(attempt, clock.now()):
        return "nothing to do"
    channel, address, code, lang = json.loads(opened)
    who = eligible(matching(channel, address))
    with database.atomic():
        messages = _send(attempt, who, channel, address, code, lang) if who else []
    outbound.dispatch(*messages)
    return f"{len(messages)} sent"


def parse_address(text: str) -> tuple[str, str]:
    """("email", address) or ("sms", E.164); InvalidInput for neither (a question of
    form only: it says nothing about whether anyone has the address)."""
    text = (text or "").strip()[:254]
    if "@" in text:
        return "email", names.normalize_email(text).lower()
    regions = [r for (r,) in Firm.select(Firm.phone_region).distinct().tuples()] or ["US"]
    for region in sorted(set(regions), key=lambda r: r != "US"):
        e164 = phones.try_normalize(text, region)
        if e164:
            return "sms", e164
    raise InvalidInput("Enter the mobile number or the email your firm has for you, "
                       "like (212) 555-0134 or maria@example.com", field="address")


def matching(channel: str, address: str) -> list[Client]:
    if channel == "sms":
        return list(Client.select().where(Client.phone == address).order_by(Client.id))
    return list(Client.select().where(fn.LOWER(Client.email) == address).order_by(Client.id))


def eligible(candidates: list[Client]) -> list[Client]:
    """Those with an account whose access the firm has not ended since they accepted."""
    return [c for c in candidates if _has_access(c)]


def _has_access(client: Client) -> bool:
    if not ClientAccount.select().where(ClientAccount.client == client).exists():
        return False
    accepted = _last_event(client, ("invite.accepted",))
    ended = _last_event(client, ACCESS_ENDED)
    return accepted is not None and (ended is None or ended < accepted)


def _last_event(client: Client, kinds: tuple[str, ...]) -> int | None:
    return (Event.select(fn.MAX(Event.id))
            .where(Event.client == client, Event.kind.in_(kinds)).scalar())


def _send(attempt, who: list[Client], channel: str, address: str, code: str,
          lang: str) -> list[Message]:
    """The code's messages (to dispatch after commit), and the attempt opens `who`:
    none when a client has had CODES_PER_HOUR codes this hour, or they were written
    before. An opted-out number: to each email on file."""
    since = clock.now() - timedelta(hours=1)
    if any(_codes_since(c, since) >= CODES_PER_HOUR for c in who):
        return []
    targets = [(channel, address)]
    if channel == "sms" and optouts.is_opted_out(address):
        targets = [("email", e) for e in dict.fromkeys(c.email.lower() for c in who if c.email)]
    if not targets:
        return []
    firm = who[0].firm_id if len({c.firm_id for c in who}) == 1 else None
    messages = [outbound.write(firm=firm, client=who[0] if len(who) == 1 else None,
                               channel=via, kind=KIND, to_addr=to,
                               rendered=_code_message(via, code, _language(who, lang)),
                               dedupe_key=f"signin-{attempt.id}-{n}")
                for n, (via, to) in enumerate(targets)]
    if messages[0] is None:  # sent by an earlier run
        return []
    SignInAttempt.update(clients=[c.id for c in who]).where(
        SignInAttempt.id == attempt.id).execute()
    for client in who:
        events.record("signin.code_sent", client=client, actor="client", by=targets[0][0])
    return messages


def _codes_since(client: Client, since) -> int:
    return Event.select().where(Event.client == client, Event.kind == "signin.code_sent",
                                Event.at >= since).count()


def _language(who: list[Client], asked_in: str) -> str:
    """The client's language; with several clients, the page's."""
    return i18n.of_client(who[0]) if len(who) == 1 else asked_in


def _code_message(channel: str, code: str, lang: str) -> Rendered:
    """The message with the code in it, stored with the code sealed."""
    config = settings()
    if channel == "sms":
        host = urlsplit(config.public_base_url).hostname or "localhost"
        rendered = templates.signin_code_sms(code, host, lang)
    else:
        rendered = templates.signin_code_email(code, lang, config.support_email)
    return Rendered(body=sealed.seal_in(rendered.body, code), subject=rendered.subject,
                    html=sealed.seal_in(rendered.html, code), segments=rendered.segments,
                    encoding=rendered.encoding)


def _hidden(channel: str, address: str) -> str:
    """Enough of the address for its owner to know it: the last 4 digits of a number,
    the first letter and the domain of an email."""
    if channel == "email":
        name, _, domain = address.partition("@")
        return f"{name[:1]}•••@{domain}"
    return f"•••-{address[-4:]}"


# --- the code -------------------------------------------------------------------------


def check(nonce: str | None, code: str) -> Checked:
    """Whether `code` is the one sent for this browser's attempt: `ok` (once), `wrong`
    (with the tries left), or `ended` (used, expired, or MAX_TRIES wrong codes)."""
    attempt = _attempt(nonce)
    now = clock.now()
    if attempt is None or not _open(attempt, now):
        return Checked("ended")
    counted = (SignInAttempt.update(tries=SignInAttempt.tries + 1)
               .where(SignInAttempt.id == attempt.id, SignInAttempt.tries < MAX_TRIES,
                      SignInAttempt.used_at.is_null(), SignInAttempt.ended_at.is_null(),
                      SignInAttempt.expires_at > now).execute())
    if not counted:
        return Checked("ended")
    given = "".join(ch for ch in (code or "")[:20] if ch in "0123456789")
    right = hmac.compare_digest(attempt.code_digest, _code_digest(attempt.id, given))
    if not (right and attempt.clients):
        return _wrong(attempt, attempt.tries + 1, now)
    used = (SignInAttempt.update(used_at=now)
            .where(SignInAttempt.id == attempt.id, SignInAttempt.used_at.is_null()).execute())
    who = eligible(list(Client.select().where(Client.id.in_(attempt.clients))))
    return Checked("ok", who) if used and who else Checked("ended")


def _wrong(attempt: SignInAttempt, tries: int, now) -> Checked:
    who = list(Client.select().where(Client.id.in_(attempt.clients or [0])))
    for client in who:
        events.record("signin.wrong_code", client=client, actor="client")
        _close_after_too_many(client, now)
    if tries < MAX_TRIES:
        return Checked("wrong", tries_left=MAX_TRIES - tries)
    SignInAttempt.update(ended_at=now, end_reason="too many wrong codes").where(
        SignInAttempt.id == attempt.id, SignInAttempt.ended_at.is_null()).execute()
    for client in who:
        events.record("signin.locked", client=client, actor="client", tries=tries)
    return Checked("ended")


def _close_after_too_many(client: Client, now) -> None:
    """WRONG_CODES_PER_DAY wrong codes for the client in a day (since they last
    accepted a link), from any address: signing in with a code is closed until they
    accept a new one (`signin.closed` ends access, as a revoke does)."""
    accepted = _last_event(client, ("invite.accepted",)) or 0
    if (_last_event(client, ("signin.closed",)) or 0) > accepted:
        return  # closed already
    wrong = Event.select().where(Event.client == client, Event.kind == "signin.wrong_code",
                                 Event.id > accepted, Event.at >= now - timedelta(days=1)).count()
    if wrong >= WRONG_CODES_PER_DAY:
        events.record("signin.closed", client=client, actor="client", count=wrong)


def _open(attempt: SignInAttempt, now) -> bool:
    return (attempt.used_at is None and attempt.ended_at is None and attempt.expires_at > now
            and attempt.tries < MAX_TRIES)


def _attempt(nonce: str | None) -> SignInAttempt | None:
    if not nonce or len(nonce) > 100:
        return None
    return SignInAttempt.get_or_none(SignInAttempt.digest == _digest(nonce))


def choices(nonce: str | None) -> list[Client]:
    """After the right code for an address several clients have: the accounts to
    choose from, while the attempt is fresh and nothing is chosen yet."""
    attempt = _attempt(nonce)
    if attempt is None or attempt.used_at is None or attempt.chosen_at is not None:
        return []
    if clock.now() - attempt.used_at > CODE_TTL:
        return []
    return eligible(list(Client.select().where(Client.id.in_(attempt.clients or [0]))
                         .order_by(Client.id)))


def choose(nonce: str | None, client_id: int) -> Client | None:
    """The account chosen from `choices`, once; None for anything else."""
    who = {c.id: c for c in choices(nonce)}
    if client_id not in who:
        return None
    chosen = (SignInAttempt.update(chosen_at=clock.now())
              .where(SignInAttempt.digest == _digest(nonce),
                     SignInAttempt.chosen_at.is_null()).execute())
    return who[client_id] if chosen else None


def enter(client: Client) -> str:
    """Sign the client in: a new session (its id, for the browser), in the log."""
    events.record("signin.succeeded", client=client, actor="client")
    return sessions.start(client.id)


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _code_digest(attempt_id: int, code: str) -> str:
    key = settings().secret_key.encode()
    return hmac.new(key, f"signin:{attempt_id}:{code}".encode(), hashlib.sha256).hexdigest()
