"""Error answers: a plain page (or JSON, when the caller asked for JSON), never a
stack trace. The database or Redis away is a 503 with `Retry-After`."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from peewee import InterfaceError, OperationalError
from redis import RedisError
from werkzeug.exceptions import HTTPException

from core.platform.i18n import N_
from ops.errors import reference as error_reference

from . import pages

log = logging.getLogger(__name__)
RETRY_AFTER = "30"

PAGES = {  # the catalogue's words (core/platform/i18n.py), translated as each page is shown
    400: (N_("That didn't work"), N_("The page was open too long or was sent twice. Go back, "
                                     "reload it and try again.")),
    403: (N_("Not allowed"), N_("You can't do that with this account.")),
    404: (N_("Not found"), N_("There is nothing here. Open the link from your message again.")),
    405: (N_("Not allowed"), N_("That isn't something this page does.")),
    413: (N_("Too much"), N_("That was more than this page takes.")),
    429: (N_("Too many tries"), N_("Too many links that don't work were opened from here. "
                                   "Wait ten minutes, then open the link from your message.")),
    500: (N_("Something went wrong"), N_("Something went wrong on our side. Try again in a "
                                         "minute; if it keeps happening, tell the firm that "
                                         "invited you.")),
    503: (N_("Back in a minute"), N_("LedgerSync is briefly unavailable. Try again in a "
                                     "minute.")),
}


def install(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(CSRFError, lambda _e: answer(400))
    for unavailable in (OperationalError, InterfaceError, RedisError):
        app.register_error_handler(unavailable, _unavailable)
    app.register_error_handler(Exception, _unexpected)


def answer(code: int, headers: dict | None = None):
    pages.in_their_language()
    title, text = (gettext(words) for words in PAGES.get(code, PAGES[500]))
    if _wants_json():
        reply = jsonify(error=title, detail=text, status=code)
    else:
        reply = render_template("error.html", title=title, text=text, firm=None)
    return reply, code, headers or {}


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _http(error: HTTPException):
    if error.code is None or error.code not in PAGES:
        return error
    return answer(error.code)


def _unavailable(error: Exception):
    log.error("unavailable: %s (%s)", type(error).__name__, str(error).splitlines()[0][:200]
              if str(error) else "")
    return answer(503, {"Retry-After": RETRY_AFTER})


def _unexpected(error: Exception):
    ref = error_reference()
    log.exception("unhandled error (ref %s) on %s %s", ref, request.method, request.path)
    return answer(500, {"X-Error-Ref": ref})
