"""SMS text: GSM-7 alphabet, segment counting, and keeping our texts GSM-7.

A text that is all GSM-7 fits 160 characters in one segment (153 per part when
split); one character outside it turns the whole text into UCS-2 at 70 (67).

Names are transliterated to GSM-7 with anyascii (Łódź → Lodz, Иван → Ivan), but
only names written in the Latin, Greek or Cyrillic alphabets: a name with letters
of any other script (王小明, محمد, …) would come out as something its owner can't
read, so such a text keeps the name as written and goes as UCS-2 (`needs_ucs2`).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass

from anyascii import anyascii

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"
_GSM7 = set(GSM7_BASIC) | set(GSM7_EXTENDED)

# Typography that people and word processors add, with its plain GSM-7 twin.
_PLAIN = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2032": "'", "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u00b4": "'", "\u0060": "'",
}


@dataclass(frozen=True)
class Segments:
    encoding: str  # GSM-7 | UCS-2
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    count: int


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7 for ch in text)


def measure(text: str) -> Segments:
    if is_gsm7(text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        return Segments("GSM-7", units, _parts(units, 160, 153))
    units = len(text.encode("utf-16-le")) // 2
    return Segments("UCS-2", units, _parts(units, 70, 67))


def _parts(units: int, single: int, multi: int) -> int:
    if units == 0:
        return 1
    return 1 if units <= single else math.ceil(units / multi)


def plain(text: str) -> str:
    """Typography made plain (curly quotes, long dashes); everything else kept."""
    return "".join(_PLAIN.get(ch, ch) for ch in text)


# Alphabets whose letters anyascii turns into letters the reader still recognises.
_TRANSLITERATED_SCRIPTS = {"LATIN", "GREEK", "CYRILLIC"}
_EMOJI_NAME = re.compile(r"^:[a-z0-9_+-]+:$")  # anyascii spells emoji ":smile:"


def _script(ch: str) -> str | None:
    words = set(unicodedata.name(ch, "").split())
    return next(iter(words & _TRANSLITERATED_SCRIPTS), None)


def needs_ucs2(name: str) -> bool:
    """Whether GSM-7 would lose `name`: it has a letter outside the Latin, Greek
    and Cyrillic alphabets, or nothing but symbols (an emoji for a name)."""
    if any(unicodedata.category(ch).startswith("L") and ch not in _GSM7 and _script(ch) is None
           for ch in name):
        return True
    return bool(name.strip()) and not any(ch.isalnum() for ch in to_gsm7(name))


def to_gsm7(text: str) -> str:
    """Our own words and names made GSM-7: curly quotes straightened, letters the
    alphabet lacks transliterated (Zoë → Zoe, Łódź → Lodz, Иван → Ivan; a Greek
    word wholly, not just its letters the alphabet lacks), emoji left out."""
    return "".join(map(_gsm7_of, text))


@functools.lru_cache(maxsize=8192)
def _gsm7_of(ch: str) -> str:
    """One character made GSM-7 (remembered: every text asks for the same few)."""
    ch = _PLAIN.get(ch, ch)
    if all(c in _GSM7 for c in ch) and not (len(ch) == 1 and _script(ch) == "GREEK"):
        return ch
    ascii_ = anyascii(ch)
    if _EMOJI_NAME.match(ascii_) and not ch.isalnum():
        ascii_ = ""
    return "".join(c for c in ascii_ if c in _GSM7)


def for_sms(text: str, ucs2: bool) -> str:
    """The text as sent: GSM-7 unless `ucs2` (a name GSM-7 would lose), then only
    its typography made plain and every character kept."""
    return plain(text) if ucs2 else to_gsm7(text)
