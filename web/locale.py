"""The client pages' language, through Flask-Babel, from core's one catalogue
(`core/platform/i18n.py`: the `.po` files compiled in memory, no `.mo` to build).

A page is in: the language the visitor chose (`?lang=es`, kept in their session),
else the client's own (a view that knows the client calls `use`), else what the
browser asks for (`Accept-Language`), else English. Pages other than the client's
(the outbox, Slack's linking page) stay English.
"""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import Babel, Domain, get_locale, refresh

from core.platform import i18n

CHOSEN = "lang"  # the session key of a visitor's own choice


class _Catalogue(Domain):
    """Flask-Babel's domain, reading core's catalogue (one for texts, emails and pages)."""

    def get_translations(self):
        locale = get_locale()
        return i18n.translations(str(locale) if locale else i18n.DEFAULT)


class _Babel(Babel):
    @property
    def domain_instance(self):
        return _CATALOGUE


_CATALOGUE = _Catalogue()


def install(app: Flask) -> None:
    _Babel(app, locale_selector=_selected)

    @app.context_processor
    def _languages():
        return {"page_lang": current(), "languages": i18n.LANGUAGES}


def _selected() -> str:
    return g.get("page_lang") or i18n.DEFAULT


def current() -> str:
    return g.get("page_lang") or i18n.DEFAULT


def for_visitor() -> None:
    """Choose a client page's language before its view runs (a `?lang=` choice is
    remembered)."""
    asked = i18n.known(request.args.get("lang"))
    if asked:
        session[CHOSEN] = asked
    chosen = i18n.known(session.get(CHOSEN))
    best = request.accept_languages.best_match(list(i18n.LANGUAGES))
    g.page_lang = chosen or best or i18n.DEFAULT
    g.lang_chosen = bool(chosen)
    refresh()


def use(lang: str | None) -> None:
    """The client's own language, unless the visitor chose one on the page."""
    if lang and not g.get("lang_chosen"):
        g.page_lang = i18n.known(lang) or i18n.DEFAULT
        refresh()


def keep_choice(values: dict) -> dict:
    """`values` plus the visitor's language choice (a new session keeps it)."""
    chosen = session.get(CHOSEN)
    return {**values, CHOSEN: chosen} if chosen else values
