"""Every action and callback id the Slack app uses, in one place."""

from __future__ import annotations

from enum import StrEnum

from core.platform.errors import InvalidInput


class ActionId(StrEnum):
    RESEND = "resend"
    RESEND_ANYWAY = "resend_anyway"  # after the warning that the address must be checked
    REMIND = "remind"
    REVOKE = "revoke"
    RECONNECT = "ask_reconnect"
    PICK = "pick_client"
    MORE = "show_more"
    BULK_CONFIRM = "bulk_confirm"
    BULK_CANCEL = "bulk_cancel"
    BULK_RETRY = "bulk_retry"
    CONNECT = "connect_start"  # App Home's Connect: a one-time linking page
    LINK_OPENED = "link_page_opened"  # the URL button itself (Slack sends its click too)
    FUNNEL_FOLLOW_UP = "funnel_follow_up"  # the funnel's, the digest's, the Home's follow-ups


class CallbackId(StrEnum):
    CLIENT_ADD = "client_add_modal"
    CLIENT_EDIT = "client_edit_modal"
    IMPORT = "import_modal"
    INVITE = "invite_modal"
    BULK_LIST = "bulk_list_modal"


class BlockId(StrEnum):
    NAME = "name"
    PHONE = "phone"
    CLIENT_EMAIL = "client_email"
    BANKS = "banks"
    CSV = "csv"
    CHANNEL = "channel"
    PURPOSE = "purpose"
    NAMES = "names"


STALE = "That didn't work: this button is out of date. Run the command again."


def record_id(value) -> int:
    """A database id carried by a button or a modal. Slack signs the request, but the
    value is still checked: anything but a plain number is a stale or tampered button."""
    text = str(value if value is not None else "").strip().lstrip("#")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInput(STALE)
    return int(text)
