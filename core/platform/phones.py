"""Phone numbers: parsed with `phonenumbers`, stored as E.164."""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import timezone as phone_timezone

from .errors import InvalidInput


def normalize(text: str, region: str = "US") -> str:
    """E.164 for a number in any common format; InvalidInput if it is not a real number."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput("No phone number given", field="phone")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"'{_clip(raw)}' is not a phone number", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"'{_clip(raw)}' is not a valid phone number for {region}",
                           field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalize(text: str, region: str = "US") -> str | None:
    try:
        return normalize(text, region)
    except InvalidInput:
        return None


@functools.lru_cache(maxsize=4096)  # asked twice a text (quiet hours, the text's times)
def zone_of(e164: str) -> str | None:
    """The number's time zone when it has exactly one (415 → America/Los_Angeles)."""
    try:
        zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in zones if z != "Etc/Unknown"]
    return zones[0] if len(zones) == 1 else None


def display(e164: str) -> str:
    """(415) 555-2671 for a US reader, +44 20 … for others."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    fmt = phonenumbers.PhoneNumberFormat
    style = fmt.NATIONAL if number.country_code == 1 else fmt.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
