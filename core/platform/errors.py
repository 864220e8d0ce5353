"""Errors that core services raise; every driver renders them as one clear line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fix:
    """What puts the problem right, for each driver to name in its own words (the
    command line and Slack have different commands for the same thing): `edit_client`
    (`detail`: the field to set, e.g. `phone` or `email`), or `invite_by` (`detail`:
    the other channel)."""

    action: str
    client: str = ""  # the client's name, as the command takes it
    detail: str = ""


class LedgerSyncError(Exception):
    """Base class: the message is written for the person who asked. `field` names
    the input it is about (`name`, `phone`, `email`…), so a form can show it there;
    `fixes`, what puts it right (each driver names its command)."""

    def __init__(self, message: str = "", *, field: str | None = None,
                 fixes: tuple[Fix, ...] = ()):
        super().__init__(message)
        self.field = field
        self.fixes = fixes


class ConfigError(LedgerSyncError):
    """A setting is missing or malformed."""


class NotFound(LedgerSyncError):
    """The thing asked for does not exist (or is not visible to the asker)."""


class Refused(LedgerSyncError):
    """The action is not allowed in the current state; the message says why and what to do."""


class InvalidInput(LedgerSyncError):
    """The input cannot be understood (a malformed phone number, an empty name)."""


class Ambiguous(LedgerSyncError):
    """More than one thing matches; `candidates` lists them so the asker can pick."""

    def __init__(self, message: str, candidates: list):
        super().__init__(message, field="name")
        self.candidates = candidates
