"""Firms (LedgerSync customers) and their staff accounts."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from . import clients, clock, events
from .errors import Ambiguous, InvalidInput, NotFound, Refused
from .models import Firm, Staff

ROLES = ("admin", "staff")
MIN_PASSWORD = 10
_hasher = PasswordHasher()


def create(name: str, *, admin_email: str, admin_password: str, admin_name: str = "",
           timezone: str = "America/New_York", phone_region: str = "US") -> Firm:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("A firm needs a name")
    if Firm.select().where(Firm.name == name).exists():
        raise Refused(f"A firm called {name} already exists")
    _check_zone(timezone)
    firm = Firm.create(name=name, timezone=timezone, phone_region=phone_region.upper())
    add_staff(firm, admin_email, admin_password, name=admin_name, role="admin")
    events.record("firm.created", firm=firm, name=name)
    return firm


def _check_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"'{name}' is not a time zone (try America/New_York)") from None


def add_staff(firm: Firm, email: str, password: str, *, name: str = "",
              role: str = "staff") -> Staff:
    if role not in ROLES:
        raise InvalidInput(f"A role is admin or staff, not '{role[:20]}'")
    email = clients.normalize_email(email)
    if Staff.select().where(Staff.email == email).exists():
        raise Refused(f"{email} already has a LedgerSync account")
    staff = Staff.create(firm=firm, email=email, name=name, role=role,
                         password_hash=hash_password(password))
    events.record("staff.added", firm=firm, email=email, role=role)
    return staff


def hash_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def set_password(staff: Staff, password: str) -> None:
    staff.password_hash = hash_password(password)
    staff.password_changed_at = clock.now()
    staff.save()
    events.record("staff.password_changed", firm=staff.firm_id, staff=staff.id)


def check_password(staff: Staff | None, password: str) -> bool:
    """Constant work whether or not the account exists."""
    target = staff.password_hash if staff else _DUMMY_HASH
    try:
        ok = _hasher.verify(target, password or "")
    except (VerificationError, InvalidHashError):
        return False
    return ok and staff is not None


_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


def find(text: str) -> Firm:
    """A firm by id or name (case-insensitive); Ambiguous or NotFound otherwise."""
    text = (text or "").strip()
    if text.isdigit():
        firm = Firm.get_or_none(Firm.id == int(text))
        if firm:
            return firm
    key = clients.name_key(text)
    matches = [f for f in Firm.select() if clients.name_key(f.name) == key]
    if not matches:
        matches = [f for f in Firm.select() if key and key in clients.name_key(f.name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"No firm called '{text[:60]}'")
    raise Ambiguous(f"{len(matches)} firms match '{text[:60]}'", matches)


def only() -> Firm | None:
    """The firm, when there is exactly one (development and small installs)."""
    firms = list(Firm.select().limit(2))
    return firms[0] if len(firms) == 1 else None


def set_role(firm: Firm, email: str, role: str, *, actor: str = "system") -> Staff:
    """An admin changes a colleague's role (only within their own firm)."""
    if role not in ROLES:
        raise InvalidInput(f"A role is admin or staff, not '{role[:20]}'")
    staff = Staff.get_or_none(Staff.email == (email or "").strip().lower(), Staff.firm == firm)
    if staff is None:
        raise NotFound(f"No one at {firm.name} signs in as {email[:80]}")
    admins = Staff.select().where(Staff.firm == firm, Staff.role == "admin", Staff.id != staff.id)
    if role == "staff" and staff.role == "admin" and not admins.exists():
        raise Refused(f"{staff.email} is the only admin; make someone else admin first")
    Staff.update(role=role).where(Staff.id == staff.id).execute()
    events.record("staff.role_changed", firm=firm, actor=actor, email=staff.email, role=role)
    return staff.refreshed()
