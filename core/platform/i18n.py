"""One catalogue for every word a client reads — the pages, the texts, the emails —
in the languages we ship: English (the words in the code) and Spanish.

The catalogue is `core/translations/<lang>/LC_MESSAGES/messages.po`, kept up to
date from the code with `pybabel extract` / `pybabel update` (see `babel.cfg` and
the README). There are no compiled `.mo` files to keep in step with it: a process
compiles a language's `.po` in memory the first time it needs it (milliseconds),
so a fresh checkout, `scripts/test` and `scripts/try` need no build step. Core
renders texts and emails with `translate(lang, …)`; the web pages read the same
catalogue through Flask-Babel (`web/locale.py`). Messages use `%(name)s` fields.

A client reads their own language (`Client.language`), else their firm's
(`Firm.language`), else English.
"""

from __future__ import annotations

import functools
import io
import re
from datetime import datetime, tzinfo
from pathlib import Path

from babel.dates import format_datetime
from babel.messages import mofile, pofile
from babel.support import NullTranslations, Translations

from . import clock
from .errors import InvalidInput

DEFAULT = "en"
LANGUAGES = {"en": "English", "es": "Español"}
# What people type for a language (CLI, Slack, a CSV column), lower-cased, accents kept.
_NAMES = {"en": "en", "english": "en", "inglés": "en", "ingles": "en", "en-us": "en",
          "es": "es", "spanish": "es", "español": "es", "espanol": "es", "es-us": "es",
          "es-mx": "es", "es-es": "es", "castellano": "es"}
FOLDER = Path(__file__).parents[1] / "translations"
DOMAIN = "messages"


def N_(text: str) -> str:
    """Marks `text` for the catalogue where it is defined; it is translated where it is
    shown (`translate`, or `_` on a page)."""
    return text


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The catalogue of `lang`, compiled from its `.po` on first use; English (and a
    language we don't ship) is the words as written."""
    if lang == DEFAULT or lang not in LANGUAGES:
        return NullTranslations()
    path = FOLDER / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as source:
        catalog = pofile.read_po(source, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    mofile.write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)


def translate(lang: str, text: str, **fields) -> str:
    """`text` in `lang`, its `%(name)s` fields filled."""
    said = translations(lang).gettext(text)
    return said % fields if fields else said


def ntranslate(lang: str, singular: str, plural: str, num: int, **fields) -> str:
    said = translations(lang).ngettext(singular, plural, num)
    return said % {"num": num, **fields}


def known(lang: str | None) -> str | None:
    """`lang` when we ship it, else None."""
    return lang if lang in LANGUAGES else None


def parse(text: str | None) -> str:
    """A language code from what a person typed ("es", "Spanish", "español")."""
    key = (text or "").strip().lower().replace("_", "-")
    if key in _NAMES:
        return _NAMES[key]
    shipped = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
    raise InvalidInput(f"'{(text or '').strip()[:20]}' is not a language we ship: {shipped}",
                       field="language")


def of_client(client) -> str:
    """The language a client reads: theirs, else their firm's, else English."""
    return known(getattr(client, "language", None)) or of_firm(client.firm)


def of_firm(firm) -> str:
    return known(getattr(firm, "language", None)) or DEFAULT


# --- dates in the reader's language ---------------------------------------------------

_FIELD = re.compile(r"%\((\w+)\)s")


def fields_of(text: str) -> set[str]:
    """The `%(name)s` fields a message uses."""
    return set(_FIELD.findall(text))


def short_date(value: datetime, tz: tzinfo, lang: str) -> str:
    """'Sat 28 Nov' / 'sáb 28 nov' in the reader's zone."""
    if lang == DEFAULT or lang not in LANGUAGES:
        return clock.short_date(value, tz)
    return format_datetime(clock.as_utc(value), "EEE d MMM", tzinfo=tz, locale=lang)


def time_of_day(value: datetime, tz: tzinfo, lang: str) -> str:
    """'3:15 PM' / '15:15' in the reader's zone."""
    if lang == DEFAULT or lang not in LANGUAGES:
        local = clock.as_utc(value).astimezone(tz)
        return f"{local.hour % 12 or 12}:{local:%M} {local:%p}"
    return format_datetime(clock.as_utc(value), "H:mm", tzinfo=tz, locale=lang)


def date_time(value: datetime, tz: tzinfo, lang: str) -> str:
    """'Sat 28 Nov 3:15 PM' / 'sáb 28 nov 15:15': the day and the time of day (a text's
    words: no comma, no zone)."""
    return f"{short_date(value, tz, lang)} {time_of_day(value, tz, lang)}"


def date_time_zone(value: datetime, tz: tzinfo, lang: str = DEFAULT) -> str:
    """'Sun 6 Dec, 9:30 PM PST' / 'dom 6 dic, 21:30 PST': the day, the time of day and
    the zone's abbreviation (as the tz database gives it), in the reader's zone."""
    zone = clock.as_utc(value).astimezone(tz).tzname()
    return f"{short_date(value, tz, lang)}, {time_of_day(value, tz, lang)} {zone}"
