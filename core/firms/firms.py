"""Firms (LedgerSync customers) and their staff accounts."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from peewee import fn

from core.platform import clock, names
from core.platform.db import database, is_sqlite
from core.platform.errors import Ambiguous, InvalidInput, NotFound, Refused
from core.records import Firm, Staff, events

ROLES = ("admin", "staff")
MIN_PASSWORD = 10
MAX_NAME = 200
NO_PASSWORD = "!"  # no hash looks like this: signing in fails until a password is set
_hasher = PasswordHasher()


def create(name: str, *, admin_email: str, admin_password: str, admin_name: str = "",
           timezone: str = "America/New_York", phone_region: str = "US",
           actor: str = "system") -> Firm:
    """A firm and its first admin, in one transaction: both or neither."""
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("A firm needs a name")
    _check_zone(timezone)
    with database.atomic():
        if Firm.select().where(Firm.name == name).exists():
            raise Refused(f"A firm called {name} already exists")
        firm = Firm.create(name=name, timezone=timezone, phone_region=phone_region.upper())
        events.record("firm.created", firm=firm, actor=actor, name=name)
        add_staff(firm, admin_email, admin_password, name=admin_name, role="admin", actor=actor)
    return firm


def _check_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"'{name}' is not a time zone (try America/New_York)") from None


def add_staff(firm: Firm, email: str, password: str | None, *, name: str = "",
              role: str = "staff", actor: str = "system", **fields) -> Staff:
    """A staff account. `password` None: none usable until `set_password`; `fields`
    are further columns (the Slack link of a colleague added from Slack)."""
    _check_role(role)
    email = names.normalize_email(email).lower()
    name = person_name(name)
    taken = Staff.get_or_none(fn.LOWER(Staff.email) == email)
    if taken is not None and taken.firm_id == firm.id:
        raise Refused(f"{email} is already at {firm.name}")
    if taken is not None:  # another firm's: say no more than that it can't be used
        raise Refused(f"{email} can't be used for a new account; if it is right, "
                      "ask LedgerSync support")
    password_hash = NO_PASSWORD if password is None else hash_password(password)
    staff = Staff.create(firm=firm, email=email, name=name, role=role,
                         password_hash=password_hash, **fields)
    events.record("staff.added", firm=firm, actor=actor, email=email, role=role)
    return staff


def person_name(text: str | None) -> str:
    """A person's name as given (spaces tidied), or empty."""
    name = " ".join((text or "").split())
    if len(name) > MAX_NAME:
        raise InvalidInput(f"A name can be at most {MAX_NAME} characters")
    return name


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"A role is admin or staff, not '{(role or '')[:20]}'")


def hash_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def set_password(staff: Staff, password: str, *, actor: str = "system") -> None:
    """A new password; any Slack link made before it ends (connect again)."""
    staff.password_hash = hash_password(password)
    staff.password_changed_at = clock.now()
    staff.save()
    events.record("staff.password_changed", firm=staff.firm_id, actor=actor, staff=staff.id,
                  email=staff.email)


def check_password(staff: Staff | None, password: str) -> bool:
    """Constant work whether or not the account exists, or has a password yet."""
    usable = staff is not None and staff.password_hash != NO_PASSWORD
    target = staff.password_hash if usable else _DUMMY_HASH
    try:
        ok = _hasher.verify(target, password or "")
    except (VerificationError, InvalidHashError):
        return False
    return ok and usable


_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


def find(text: str) -> Firm:
    """A firm by id or name (case-insensitive); Ambiguous or NotFound otherwise."""
    text = (text or "").strip()
    if re.fullmatch(r"[0-9]{1,18}", text):
        firm = Firm.get_or_none(Firm.id == int(text))
        if firm:
            return firm
    key = names.name_key(text)
    matches = [f for f in Firm.select() if names.name_key(f.name) == key]
    if not matches:
        matches = [f for f in Firm.select() if key and key in names.name_key(f.name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"No firm called '{text[:60]}'")
    raise Ambiguous(f"{len(matches)} firms match '{text[:60]}'", matches)


def only() -> Firm | None:
    """The firm, when there is exactly one (development and small installs)."""
    firms = list(Firm.select().limit(2))
    return firms[0] if len(firms) == 1 else None


def listed() -> list[Firm]:
    return list(Firm.select().order_by(Firm.name))


def set_notify_channel(firm: Firm, channel: str, *, actor: str = "system") -> None:
    """Where the firm's notices go from now on (a Slack channel id)."""
    Firm.update(notify_channel=channel).where(Firm.id == firm.id).execute()
    events.record("firm.notify_channel", firm=firm, actor=actor, channel=channel)


def staff_of(firm: Firm) -> list[Staff]:
    """Everyone at the firm: admins first, then by email."""
    order = (Staff.role != "admin", Staff.email)
    return list(Staff.select().where(Staff.firm == firm).order_by(*order))


def member(firm: Firm, email: str) -> Staff:
    """A staff account of this firm (never another firm's) by its email."""
    key = (email or "").strip().lower()
    staff = Staff.get_or_none(fn.LOWER(Staff.email) == key, Staff.firm == firm)
    if staff is None:
        raise NotFound(f"No one at {firm.name} signs in as {(email or '').strip()[:80]}")
    return staff


def set_role(firm: Firm, email: str, role: str, *, actor: str = "system") -> Staff:
    """An admin changes a colleague's role (only within their own firm)."""
    _check_role(role)
    with database.atomic():
        _lock(firm)
        staff = member(firm, email)
        if role == "staff":
            _keep_an_admin(firm, staff)
        Staff.update(role=role).where(Staff.id == staff.id).execute()
        events.record("staff.role_changed", firm=firm, actor=actor, email=staff.email, role=role)
    return staff.refreshed()


def remove_staff(firm: Firm, email: str, *, actor: str = "system") -> Staff:
    """Delete a staff account: they can no longer sign in, and their Slack link ends."""
    with database.atomic():
        _lock(firm)
        staff = member(firm, email)
        _keep_an_admin(firm, staff)
        staff.delete_instance()
        events.record("staff.removed", firm=firm, actor=actor, email=staff.email,
                      role=staff.role)
    return staff


def _keep_an_admin(firm: Firm, staff: Staff) -> None:
    """Refuse a change that would leave the firm with no admin."""
    others = Staff.select().where(Staff.firm == firm, Staff.role == "admin",
                                  Staff.id != staff.id)
    if staff.role == "admin" and not others.exists():
        raise Refused(f"{staff.email} is the only admin of {firm.name}; "
                      "make someone else admin first")


def _lock(firm: Firm) -> None:
    """Changes to a firm's staff one at a time, so two admins can't demote each other at
    once. SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE)."""
    if not is_sqlite():
        list(Firm.select(Firm.id).where(Firm.id == firm.id).for_update())
