"""SMS text: GSM-7 alphabet, segment counting, and keeping our texts GSM-7.

A text that is all GSM-7 fits 160 characters in one segment (153 per part when
split); one character outside it turns the whole text into UCS-2 at 70 (67).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

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


def to_gsm7(text: str) -> str:
    """Our own words and names made GSM-7: curly quotes straightened, accents the
    alphabet lacks dropped (Zoë → Zoe), anything else left out."""
    out = []
    for ch in text:
        ch = _PLAIN.get(ch, ch)
        if all(c in _GSM7 for c in ch):
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)
        out.append("".join(c for c in base if c in _GSM7 and not unicodedata.combining(c)))
    return "".join(out)
