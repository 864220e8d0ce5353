"""Twilio's webhooks: `POST /sms/inbound` (a client's text; answered with TwiML)
and `POST /sms/status` (delivery receipts). Both are verified with the twilio
SDK's own validator against the public address Twilio called, so they are
correct behind a proxy that terminates https or changes the port."""

from __future__ import annotations

import functools
import logging
import re

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from core.invitations import client_texts
from core.messaging import deliveries
from core.platform.config import Settings
from ops import metrics

from . import errors

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")
# C0 controls but tab, newline and carriage return; DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_BODY = 5000  # Twilio joins a long text up to 1,600 characters


def public_url(config: Settings) -> str:
    """The address Twilio called: PUBLIC_BASE_URL, never the Host header."""
    query = request.query_string.decode()
    return f"{config.public_base_url}{request.path}" + (f"?{query}" if query else "")


def verified(view):
    @functools.wraps(view)
    def check():
        config: Settings = current_app.config["LEDGERSYNC"]
        signature = request.headers.get("X-Twilio-Signature", "")
        token = config.twilio_auth_token
        if not (token and signature and
                RequestValidator(token).validate(public_url(config), request.form, signature)):
            log.warning("sms: refused %s: bad or missing Twilio signature", request.path)
            metrics.verification_failed("twilio")
            abort(Response("Invalid signature.\n", 403, mimetype="text/plain"))
        return view()

    return check


def field(name: str, limit: int) -> str:
    """A form value as the database can keep it: control characters (a NUL breaks
    PostgreSQL) dropped, and no longer than its column. Twilio signed it, but a
    signature says who sent it, not that it is sane."""
    text = _CONTROL.sub("", request.form.get(name, "")).strip()
    if len(text) > limit:
        abort(Response(f"{name} is longer than {limit} characters.\n", 400,
                       mimetype="text/plain"))
    return text


@bp.post("/inbound")
@verified
def inbound():
    sid, sender = field("MessageSid", 64), field("From", 32)
    if not sid or not sender:
        abort(Response("MessageSid and From are required.\n", 400, mimetype="text/plain"))
    answer = client_texts.received(client_texts.Inbound(
        provider_id=sid, from_addr=sender, to_addr=field("To", 32),
        body=_CONTROL.sub("", request.form.get("Body", ""))[:MAX_BODY],
        media=_int(request.form.get("NumMedia"))))
    reply = MessagingResponse()
    if answer.text:
        reply.message(answer.text)
    return Response(str(reply), mimetype="text/xml")


@bp.post("/status")
@verified
def status():
    sid, state = field("MessageSid", 64), field("MessageStatus", 32)
    if not sid or not state:
        abort(Response("MessageSid and MessageStatus are required.\n", 400,
                       mimetype="text/plain"))
    code = field("ErrorCode", 16) or None
    known = state.lower() if state.lower() in deliveries.RANK else "other"
    metrics.receipt("twilio", known, code)
    deliveries.record(sid, state, error_code=code,
                      reason=errors.reason(code) if code else None,
                      address_problem=errors.address_problem(code) if code else None)
    return Response(status=204)


def _int(text: str | None) -> int:
    """A count Twilio sends (ASCII digits); anything else is 0."""
    return int(text) if text and re.fullmatch(r"[0-9]{1,9}", text) else 0
