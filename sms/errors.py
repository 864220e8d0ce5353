"""Twilio error codes in plain words, in one place.

`reason(code)` is what staff read (in the firm notice and on the client page);
`address_problem(code)` says when the number itself can't take texts, so nothing
more is tried (an opt-out) or staff are asked to fix the number. Codes come from
the REST API when a text is created (21xxx, 20xxx) and from status callbacks
(30xxx, the `ErrorCode` field).
"""

from __future__ import annotations

from core.messaging.outbound import OPTED_OUT

NOT_VALID = "not a valid phone number"
NOT_MOBILE = "not a mobile number"

REASONS: dict[int, str] = {
    # Creating the message (REST API).
    20003: "Twilio refused our credentials (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)",
    20429: "Twilio is busy; trying again",
    21211: "the number is not a valid phone number",
    21408: "texts to that country are not enabled for our Twilio account",
    21602: "the text was empty",
    21606: "our sending number can't send texts (check TWILIO_FROM_NUMBER)",
    21610: "the client has opted out of texts (replied STOP)",
    21611: "Twilio is busy; trying again",
    21612: "texts can't be sent from our number to that number",
    21614: "the number is not a mobile number (a landline can't get texts)",
    21617: "the text is too long",
    # Delivery (status callbacks).
    30001: "Twilio's queue for our number overflowed",
    30002: "our Twilio account is suspended",
    30003: "the phone was switched off or out of reach",
    30004: "the number blocked the message",
    30005: "the number doesn't exist",
    30006: "the number is a landline or can't get texts",
    30007: "the carrier filtered the message",
    30008: "the carrier didn't say why",
    30032: "our toll-free number is not verified yet",
    30034: "our number is not registered for US texting (A2P 10DLC)",
}

_PROBLEMS: dict[int, str] = {
    21211: NOT_VALID,
    30005: NOT_VALID,
    21614: NOT_MOBILE,
    30006: NOT_MOBILE,
    21610: OPTED_OUT,
}


def _number(code: int | str | None) -> int | None:
    try:
        return int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        return None


def reason(code: int | str | None) -> str:
    """Plain words for a Twilio error code (int or the string a callback posts)."""
    number = _number(code)
    if number is None:
        return "Twilio gave no reason"
    return REASONS.get(number, f"Twilio refused the text (error {number})")


def address_problem(code: int | str | None) -> str | None:
    """What is wrong with the number itself (OPTED_OUT, "not a mobile number", …),
    or None when the code says nothing about the number."""
    number = _number(code)
    return _PROBLEMS.get(number) if number is not None else None
