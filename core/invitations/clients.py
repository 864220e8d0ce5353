"""A firm's clients: add, update, find (by name, phone or email), import from CSV."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rapidfuzz import fuzz, process

from core.platform import clock, i18n, phones
from core.platform.errors import Ambiguous, Fix, InvalidInput, NotFound, Refused
from core.platform.names import name_key, normalize_email
from core.records import Client, Firm, events

MAX_NAME = 200
MAX_IMPORT_ROWS = 5000
MAX_SUGGESTIONS = 3
SUGGESTION_CUTOFF = 75  # token_sort_ratio, 0-100: 'maira' → 'maria' scores 80
# The reason on an 'added' row: renderers print "added  NAME: can't be invited …".
NO_WAY_TO_INVITE = "can't be invited until a phone or email is set"


def clean_name(text: str) -> str:
    name = " ".join((text or "").split())
    if not name_key(name):
        raise InvalidInput("A client needs a name", field="name")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"A client's name can be at most {MAX_NAME} characters",
                           field="name")
    return name


def _zone(text: str) -> str | None:
    """A time zone as the tz database names it (America/Chicago), or None for ""."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"'{text[:40]}' is not a time zone; use a name like "
                           "America/Chicago", field="timezone") from None
    return text


def clean_banks(banks) -> list[str]:
    if isinstance(banks, str):
        banks = re.split(r"[;|\n]", banks)
    seen, out = set(), []
    for bank in banks or []:
        bank = " ".join(bank.split())
        if bank and bank.casefold() not in seen:
            seen.add(bank.casefold())
            out.append(bank[:100])
    return out


def _fields(firm: Firm, name=None, phone=None, email=None, timezone=None, banks=None,
            language=None) -> dict:
    values = {}
    if name is not None:
        values["name"] = clean_name(name)
        values["name_key"] = name_key(values["name"])
    if phone is not None:
        values["phone"] = phones.normalize(phone, firm.phone_region) if phone.strip() else None
        values["phone_problem"] = None
    if email is not None:
        values["email"] = normalize_email(email) if email.strip() else None
    if timezone is not None:
        values["timezone"] = _zone(timezone)
    if banks is not None:
        values["banks"] = clean_banks(banks)
    if language is not None:  # "" clears it: the firm's language
        values["language"] = i18n.parse(language) if language.strip() else None
    return values


def add(firm: Firm, name: str, *, phone=None, email=None, timezone=None, banks=None,
        language=None, actor: str = "system") -> Client:
    values = _fields(firm, name, phone, email, timezone, banks or [], language)
    existing = Client.get_or_none(Client.firm == firm, Client.name_key == values["name_key"])
    if existing:
        raise Refused(f"{existing.name} is already a client; update them instead",
                      field="name", fixes=(Fix("edit_client", existing.name),))
    client = Client.create(firm=firm, **values)
    events.record("client.added", client=client, actor=actor, name=client.name)
    return client


def update(client: Client, *, actor: str = "system", **changes) -> Client:
    values = _fields(client.firm, **changes)
    changed = {k: v for k, v in values.items() if getattr(client, k) != v}
    if not changed:
        return client
    if "name_key" in changed:
        clash = Client.get_or_none(
            Client.firm == client.firm_id, Client.name_key == changed["name_key"],
            Client.id != client.id,
        )
        if clash:
            raise Refused(f"Another client is already called {clash.name}")
    for key, value in changed.items():
        setattr(client, key, value)
    client.updated_at = clock.now()
    client.save()
    events.record("client.updated", client=client, actor=actor, fields=sorted(changed))
    return client


def get(firm: Firm, client_id: int) -> Client:
    """A client by id, only within `firm` (a tampered id from elsewhere is NotFound)."""
    client = Client.get_or_none(Client.id == client_id, Client.firm == firm)
    if client is None:
        raise NotFound("That client does not exist")
    return client


def find(firm: Firm, query: str) -> Client:
    """One client by name, phone or email; Ambiguous with candidates, or NotFound
    (for a name, with the closest names as a "Did you mean …?")."""
    query = (query or "").strip()
    if "@" in query:
        found = _one(by_email(firm, query), query)
    elif sum(c.isdigit() for c in query) >= 7 and not re.search(r"[a-zA-Z]{2}", query):
        found = _one(by_phone(firm, query), query)
    else:
        found = _one(by_name(firm, query), query, lambda: suggest(firm, query))
    found.firm = firm  # (the same firm: not read again)
    return found


def _one(matches: list[Client], query: str, suggestions=lambda: []) -> Client:
    if len(matches) == 1:
        return matches[0]
    shown = query if len(query) <= 60 else query[:60] + "…"
    if not matches:
        close = suggestions()
        hint = f". Did you mean {_either(close)}?" if close else ""
        raise NotFound(f"No client matches '{shown}'{hint}")
    raise Ambiguous(f"{len(matches)} clients match '{shown}': which one?", matches)


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def suggest(firm: Firm, query: str, limit: int = MAX_SUGGESTIONS) -> list[str]:
    """The names closest to a mistyped one (at most `limit`, best first), or none.

    One query for the firm's names; each name and each of its words (3+ letters) is
    scored against the query by rapidfuzz, in C, so a typo in the first or last name
    alone still finds the client and word order doesn't matter."""
    key = name_key(query)
    if not key or len(key) > MAX_NAME:
        return []
    choices, owners = [], []
    rows = Client.select(Client.name, Client.name_key).where(Client.firm == firm).tuples()
    for name, stored in rows:
        choices.append(stored)
        owners.append(name)
        for word in stored.split():
            if len(word) >= 3 and word != stored:
                choices.append(word)
                owners.append(name)
    best: dict[str, float] = {}
    for _, score, index in process.extract(key, choices, scorer=fuzz.token_sort_ratio,
                                           processor=None, score_cutoff=SUGGESTION_CUTOFF,
                                           limit=None):
        name = owners[index]
        best[name] = max(best.get(name, 0.0), score)
    ranked = sorted(best.items(), key=lambda pair: (-pair[1], pair[0].casefold()))
    return [name for name, _ in ranked[:limit]]


def by_name(firm: Firm, query: str) -> list[Client]:
    key = name_key(query)
    if not key:
        raise InvalidInput("Give a client's name, phone number or email")
    exact = list(Client.select().where(Client.firm == firm, Client.name_key == key))
    if exact:
        return exact
    words = key.split()
    rows = Client.select().where(Client.firm == firm, Client.name_key.contains(words[0]))
    return sorted(
        (c for c in rows if _words_match(words, c.name_key.split())), key=lambda c: c.name_key
    )


def _words_match(query: list[str], name: list[str]) -> bool:
    return all(any(w.startswith(q) for w in name) for q in query)


def by_phone(firm: Firm, text: str) -> list[Client]:
    e164 = phones.try_normalize(text, firm.phone_region)
    if e164 is None:
        return []
    return list(Client.select().where(Client.firm == firm, Client.phone == e164))


def by_email(firm: Firm, text: str) -> list[Client]:
    try:
        address = normalize_email(text)
    except InvalidInput:
        return []
    return list(Client.select().where(Client.firm == firm, Client.email == address))


def search(firm: Firm, text: str = "", limit: int = 200) -> list[Client]:
    """Clients whose name, phone or email contains `text` (all of them when empty)."""
    rows = Client.select().where(Client.firm == firm).order_by(Client.name_key)
    key = name_key(text)
    if key:
        digits = re.sub(r"\D", "", text)
        condition = Client.name_key.contains(key) | Client.email.contains(text.strip().lower())
        if len(digits) >= 3:
            condition |= Client.phone.contains(digits)
        rows = rows.where(condition)
    return list(rows.limit(limit))


# --- CSV import -----------------------------------------------------------------


@dataclass
class RowResult:
    line: int
    name: str
    outcome: str  # added | updated | unchanged | rejected
    reason: str = ""


@dataclass
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def summary(self) -> str:
        parts = [f"{self.count(o)} {o}" for o in ("added", "updated", "unchanged", "rejected")]
        return ", ".join(p for p in parts if not p.startswith("0 ")) or "nothing to import"


def import_csv(firm: Firm, text: str, actor: str = "system") -> ImportReport:
    """Rows of name, email, phone, banks, language (header required; banks split by ; or
    |; language en or es, empty for the firm's)."""
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(text))
    headers = {h.strip().lower(): h for h in reader.fieldnames or [] if h}
    if "name" not in headers:
        raise InvalidInput("The CSV needs a header row with at least a 'name' column")
    report, seen = ImportReport(), {}
    for number, raw in enumerate(reader, start=2):
        if number - 1 > MAX_IMPORT_ROWS:
            raise InvalidInput(f"At most {MAX_IMPORT_ROWS} rows per import")
        row = {key: (raw.get(orig) or "").strip() for key, orig in headers.items()}
        if not any(row.values()):
            continue
        report.rows.append(_import_row(firm, number, row, seen, actor))
    events.record("clients.imported", firm=firm, actor=actor, summary=report.summary)
    return report


def _delimiter(text: str) -> str:
    """',' or ';' (spreadsheets in many locales export ';'), guessed from the header
    line and a sample of the rows; ',' when unsure."""
    sample = text[:8192]
    header = sample.splitlines()[0] if sample else ""
    try:
        guessed = csv.Sniffer().sniff(sample, delimiters=",;").delimiter
    except csv.Error:
        guessed = ","
    if guessed == ";" and "," in header and ";" not in header:
        return ","  # a comma header whose banks column holds 'Chase;Ally'
    if guessed == "," and ";" in header and "," not in header:
        return ";"
    return guessed


def _import_row(firm: Firm, line: int, row: dict, seen: dict, actor: str) -> RowResult:
    name = " ".join(row.get("name", "").split())
    try:
        values = _fields(firm, name, row.get("phone", ""), row.get("email", ""), None,
                         row.get("banks", ""), row.get("language", ""))
    except InvalidInput as problem:
        return RowResult(line, name, "rejected", str(problem))
    for key in ("name_key", "phone", "email"):
        if values.get(key) and (key, values[key]) in seen:
            return RowResult(line, name, "rejected", f"duplicate of row {seen[(key, values[key])]}")
    for key in ("name_key", "phone", "email"):
        if values.get(key):
            seen[(key, values[key])] = line
    existing = Client.get_or_none(Client.firm == firm, Client.name_key == values["name_key"])
    if existing is None:
        client = add(firm, name, phone=row.get("phone"), email=row.get("email"),
                     banks=values["banks"], language=row.get("language"), actor=actor)
        note = "" if client.phone or client.email else NO_WAY_TO_INVITE
        return RowResult(line, name, "added", note)
    changes = {k: row.get(k) for k in ("phone", "email", "language") if row.get(k)}
    if values["banks"]:
        changes["banks"] = values["banks"]
    before = existing.updated_at
    update(existing, actor=actor, **changes)
    outcome = "updated" if existing.updated_at != before else "unchanged"
    return RowResult(line, existing.name, outcome)
