"""Names and email addresses as people type them, put in one form to compare and keep."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from .errors import InvalidInput


def name_key(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: 'ACME Co.' and 'Acmé co' → 'acme co'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = plain.replace("&", " and ")
    return " ".join(re.sub(r"[^\w]+", " ", plain).replace("_", " ").split())


def normalize_email(text: str) -> str:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidInput(f"'{text.strip()[:60]}' is not an email address",
                           field="email") from None
