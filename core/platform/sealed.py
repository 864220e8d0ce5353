"""A secret inside a stored message, kept sealed: a one-time sign-in code goes out
in a text or an email, but the database keeps the message with the code encrypted
under ENCRYPTION_KEYS (`tokens.seal`), as it keeps an invite's link token. The
sender opens it at the moment it sends (`outbound.text_of`), so a copy of the
database yields no working code, and neither does a log line."""

from __future__ import annotations

import re

from . import tokens

_SEALED = re.compile(r"\[sealed:([A-Za-z0-9_=-]+)\]")


def seal_in(text: str | None, secret: str) -> str | None:
    """`text` with every `secret` in it replaced by its sealed form (what is stored)."""
    if text is None:
        return None
    return text.replace(secret, f"[sealed:{tokens.seal(secret)}]")


def holds_secret(text: str | None) -> bool:
    return bool(text) and _SEALED.search(text) is not None


def opened(text: str | None) -> str | None:
    """`text` as the recipient reads it, every sealed secret opened; the text as it is
    when it holds none; None when one can't be opened (the keys changed)."""
    if not holds_secret(text):
        return text
    failed = False

    def secret(match: re.Match) -> str:
        nonlocal failed
        value = tokens.unseal(match.group(1))
        failed = failed or value is None
        return value or ""

    said = _SEALED.sub(secret, text)
    return None if failed else said


def shown(text: str | None) -> str | None:
    """`text` with each sealed secret as dots: for a person reading what was sent."""
    return None if text is None else _SEALED.sub("••••••", text)
