"""What a firm shows its clients about itself (`ledgersync firm set …`, Slack admin
`/ledgersync firm set …`): a logo, the colour of the client pages' header, a phone
number and an email a client can check a link with, and the language its clients
read by default; and when its digest comes to its notices channel. Each value is
checked here, so no driver can store a bad one:

| setting       | value                                                             |
|---------------|-------------------------------------------------------------------|
| logo_url      | an https:// address of an image (the pages only load https)        |
| brand_color   | #rrggbb or #rgb                                                    |
| phone         | any common format, stored E.164                                    |
| email         | an email address                                                   |
| language      | en or es (English, Spanish)                                        |
| digest        | monday (weekly, the default), daily or off (core/reports/digest.py) |

`none` (or an empty value) clears a setting (the digest: off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.platform import i18n, names, phones
from core.platform.errors import InvalidInput
from core.records import Firm, Staff, events

MAX_URL = 500
_COLOR = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
CLEAR = {"", "none", "-", "off", "clear"}
COLUMNS = {"logo_url": "logo_url", "brand_color": "brand_color", "phone": "contact_phone",
           "email": "contact_email", "language": "language", "digest": "digest"}
DIGESTS = {"monday": "monday", "weekly": "monday", "mondays": "monday", "daily": "daily",
           "off": "off", "never": "off"}
ALIASES = {"logo": "logo_url", "color": "brand_color", "colour": "brand_color",
           "brand_colour": "brand_color", "lang": "language", "contact_phone": "phone",
           "contact_email": "email"}


def setting_name(text: str) -> str:
    key = (text or "").strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in COLUMNS:
        raise InvalidInput(f"'{(text or '').strip()[:30]}' is not a firm setting: "
                           + ", ".join(COLUMNS), field="setting")
    return key


def logo_url(text: str) -> str:
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise InvalidInput("A logo's address must start with https:// (the client pages load "
                           "nothing over plain http)", field="logo_url")
    if len(url) > MAX_URL or not _URL_CHARS.fullmatch(url) or parts.username:
        raise InvalidInput("That isn't an address a page can load a logo from",
                           field="logo_url")
    return url


def brand_color(text: str) -> str:
    match = _COLOR.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"'{text.strip()[:20]}' is not a colour: give it as #1d4ed8 "
                           "(or #17c)", field="brand_color")
    digits = match.group(1).lower()
    return "#" + (digits if len(digits) == 6 else "".join(c * 2 for c in digits))


def digest(text: str) -> str:
    """When the firm's digest comes: monday, daily or off."""
    word = text.strip().lower()
    if word in CLEAR:
        return "off"
    if word not in DIGESTS:
        raise InvalidInput(f"The digest comes monday, daily or off, not '{text.strip()[:20]}'",
                           field="digest")
    return DIGESTS[word]


def _value(firm: Firm, key: str, text: str):
    if key == "digest":
        return digest(text)
    if text.strip().lower() in CLEAR:
        return i18n.DEFAULT if key == "language" else None
    check = {"logo_url": logo_url, "brand_color": brand_color,
             "phone": lambda v: phones.normalize(v, firm.phone_region),
             "email": names.normalize_email, "language": i18n.parse}[key]
    return check(text)


def set_setting(firm: Firm, name: str, value: str, *, actor: str = "system") -> Firm:
    """Change one setting (checked); the firm as it is now."""
    key = setting_name(name)
    stored = _value(firm, key, value or "")
    Firm.update({COLUMNS[key]: stored}).where(Firm.id == firm.id).execute()
    events.record("firm.setting_changed", firm=firm, actor=actor, setting=key,
                  value=stored or "(none)")
    return firm.refreshed()


# --- what the client pages show ------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    phone: str | None  # as a reader writes it: (212) 555-0100
    phone_e164: str | None
    email: str | None


def contact(firm: Firm) -> Contact:
    """The firm's phone and email for a client to check with: the firm's own, else
    (email) its first admin's, as the invite email's Reply-To."""
    email = firm.contact_email or _first_admin_email(firm)
    phone = firm.contact_phone
    return Contact(phones.display(phone) if phone else None, phone, email)


_UNKNOWN = object()
_ADMIN = Staff.alias()
# The firm's first admin's email, as a column read with a `Firm` joined into a query
# (a link's page, a signed-in client's): hand it to `first_admin_known`.
FIRST_ADMIN_EMAIL = (_ADMIN.select(_ADMIN.email)
                     .where((_ADMIN.firm == Firm.id) & (_ADMIN.role == "admin"))
                     .order_by(_ADMIN.created_at, _ADMIN.id).limit(1))


def first_admin_known(firm: Firm, email: str | None) -> None:
    """The firm's first admin's email, read with the firm (`FIRST_ADMIN_EMAIL`, in the
    page's one query): `contact` needs no query of its own."""
    firm.__dict__["_first_admin_email"] = email


def _first_admin_email(firm: Firm) -> str | None:
    known = firm.__dict__.get("_first_admin_email", _UNKNOWN)
    if known is not _UNKNOWN:
        return known
    admin = (Staff.select(Staff.email).where(Staff.firm == firm.id, Staff.role == "admin")
             .order_by(Staff.created_at, Staff.id).first())
    return admin.email if admin else None


def described(firm: Firm) -> list[tuple[str, str]]:
    """Every setting and its value, as `firm set` with no value shows them."""
    firm = firm.refreshed()
    return [(key, str(getattr(firm, column) or "(none)")) for key, column in COLUMNS.items()]


def header_text_color(background: str) -> str:
    """Black or white, whichever reads better on `background` (#rrggbb): WCAG
    contrast, at least 4.5:1 either way for any colour."""
    def luminance(hex6: str) -> float:
        channels = [int(hex6[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
                  for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lum = luminance(background)
    on_white = (1.05) / (lum + 0.05)
    on_black = (lum + 0.05) / 0.05
    return "#ffffff" if on_white >= on_black else "#000000"
