"""Errors that core services raise; every driver renders them as one clear line."""

from __future__ import annotations


class LedgerSyncError(Exception):
    """Base class: the message is written for the person who asked. `field` names
    the input it is about (`name`, `phone`, `email`…), so a form can show it there."""

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.field = field


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
