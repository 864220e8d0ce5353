"""The client pages' language, through Flask-Babel, from core's one catalogue
(`core/platform/i18n.py`: the `.po` files compiled in memory, no `.mo` to build).

A page is in: the language the visitor chose (the *English* / *Español* switch at the
foot of every page, or `?lang=es`; kept in their session), else the client's own (a
view that knows the client calls `use`), else the language of the client this browser
last showed a page to (kept in the session, so that a Spanish client with an English
phone still reads Spanish once signed out), else what the browser asks for
(`Accept-Language`), else English. Pages other than the client's (the outbox, Slack's
linking page) stay English.

The switch is a small form (a POST with the CSRF token, `client_pages.language`):
signed in, it also sets the client's own language, which their account then keeps.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

from flask import Flask, g, request, session, url_for
from flask_babel import Babel, Domain, refresh
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from core.platform import i18n

CHOSEN = "lang"  # the session key of a visitor's own choice
SEEN = "client_lang"  # the session key of the language of the client last known here
_OURS = re.compile(r"/(i|account)/")  # where the switch may send a visitor back to


class _Catalogue(Domain):
    """Flask-Babel's domain, reading core's catalogue (one for texts, emails and pages)."""

    def get_translations(self):
        # The page's language as the locale selector gives it (`_selected`), read
        # straight from `g`: a page asks for each of its words.
        return i18n.translations(current())


class _Babel(Babel):
    @property
    def domain_instance(self):
        return _CATALOGUE


_CATALOGUE = _Catalogue()


def install(app: Flask) -> None:
    _Babel(app, locale_selector=_selected)
    # A page's words straight from the catalogue of its language, as Jinja's "new style"
    # gettext that Flask-Babel installed gives them (escaped values formatted into the
    # words). Its callables find the domain through context locals for each word, and
    # Jinja's wrappers call them through the template's context: for the 20 to 40 words
    # of a page, a fifth of the link page's time in its process. (`{% trans %}` calls
    # these too; pgettext stays Flask-Babel's.)
    app.jinja_env.globals.update(gettext=_gettext, _=_gettext, ngettext=_ngettext)

    @app.context_processor
    def _languages():
        return {"page_lang": current(), "languages": i18n.LANGUAGES,
                "switch_back_to": switch_back_to}


@pass_context
def _gettext(context: Context, string: str, **values) -> str:
    words = _catalogue(context).ugettext(string)
    return _formatted(context, words, values)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, num: int, **values) -> str:
    values.setdefault("num", num)
    words = _catalogue(context).ungettext(singular, plural, num)
    return _formatted(context, words, values)


def _catalogue(context: Context):
    # The page's language, as `_languages` put it in every template's context.
    return i18n.translations(context.get("page_lang") or current())


def _formatted(context: Context, words: str, values: dict) -> str:
    """Jinja's new-style gettext: the words always a format (so "%%" is "%"), escaped
    values into escaped words when autoescaping. Words with no "%" and no values are
    themselves (most of a page's: formatting them was half of a word's time)."""
    if context.eval_ctx.autoescape:
        words = Markup(words)
    return words if not values and "%" not in words else words % values


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
    g.page_lang = chosen or i18n.known(session.get(SEEN)) or best or i18n.DEFAULT
    g.lang_chosen = bool(chosen)
    refresh()


def use(lang: str | None) -> None:
    """The client's own language, unless the visitor chose one on the page; this
    browser remembers it for the pages that don't know the client (signed out)."""
    lang = i18n.known(lang)
    if not lang:
        return
    if session.get(SEEN) != lang:
        session[SEEN] = lang
    if not g.get("lang_chosen"):
        g.page_lang = lang
        refresh()


def choose(lang: str) -> None:
    """The visitor chose `lang` (a known language) with the switch."""
    session[CHOSEN] = lang
    g.page_lang, g.lang_chosen = lang, True
    refresh()


def chosen() -> str | None:
    """The language the visitor chose in this browser, if they did."""
    return i18n.known(session.get(CHOSEN))


def kept_at_sign_in() -> dict:
    """What a new session keeps of the one before: the visitor's choice, and the
    language this browser last showed."""
    return {key: session[key] for key in (CHOSEN, SEEN) if session.get(key)}


def kept_at_sign_out() -> dict:
    """What a signed-out browser keeps: the language its pages were in (the client's,
    or their choice — which their account keeps too), as a fallback, not a choice, so
    that whoever signs in next reads their own."""
    return {SEEN: current()}


def switch_back_to() -> str | None:
    """Where the switch brings the visitor back to: this page, when it can be
    opened again (a GET; without its `lang=`); after a form of a link's page, that
    link's page; else None (see `back_to`)."""
    rule = request.url_rule
    if rule is None or "GET" not in (rule.methods or ()):
        token = (request.view_args or {}).get("token") if request.blueprint == "client" else None
        return url_for("client.link", token=token) if token else None
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + (f"?{urlencode(query)}" if query else "")


def back_to(target: str | None) -> str | None:
    """`target` if it is one of our client pages' paths (never another site), else None."""
    text = (target or "")[:1000]
    if not text.isprintable() or "\\" in text or text.startswith("//"):
        return None
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not _OURS.match(parts.path):
        return None
    return text
