"""Banks: the institutions a client can pick, and the provider port that links
and repairs connections.

The embedded provider is a sandbox like the aggregators' own: credentials decide
what happens, so every path can be tried by hand and in tests:

| username    | password    | result                                  |
|-------------|-------------|-----------------------------------------|
| user_good   | pass_good   | connected                               |
| user_mfa    | pass_good   | asks for a one-time code (1234 passes)  |
| anything else               | wrong username or password          |
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from .clients import name_key
from .config import settings


@dataclass(frozen=True)
class Institution:
    id: str
    name: str


@dataclass(frozen=True)
class LinkResult:
    status: str  # connected | needs_code | failed
    message: str = ""
    challenge: str | None = None  # for needs_code: hand back with the code


class BankProvider(Protocol):
    def link(self, institution: Institution, username: str, password: str) -> LinkResult: ...

    def submit_code(self, institution: Institution, challenge: str, code: str) -> LinkResult: ...


@cache
def institutions() -> tuple[Institution, ...]:
    path = Path(__file__).with_name("data") / "institutions.json"
    return tuple(Institution(**row) for row in json.loads(path.read_text()))


def institution(institution_id: str) -> Institution | None:
    return next((i for i in institutions() if i.id == institution_id), None)


def by_name(name: str) -> Institution:
    """The institution for a pre-selected bank name (unknown names are kept as typed)."""
    key = name_key(name)
    found = next((i for i in institutions() if name_key(i.name) == key), None)
    return found or Institution(id="custom-" + "-".join(key.split())[:50], name=name)


def search(text: str, limit: int = 20) -> list[Institution]:
    key = name_key(text)
    if not key:
        return []
    starts = [i for i in institutions() if name_key(i.name).startswith(key)]
    contains = [i for i in institutions() if key in name_key(i.name) and i not in starts]
    return (starts + contains)[:limit]


def provider() -> BankProvider:
    return _load(settings().bank_provider)


@cache
def _load(path: str) -> BankProvider:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)()


class SandboxProvider:
    CODE = "1234"

    def link(self, institution: Institution, username: str, password: str) -> LinkResult:
        if password == "pass_good" and username == "user_good":
            return LinkResult("connected")
        if password == "pass_good" and username == "user_mfa":
            return LinkResult("needs_code", f"{institution.name} sent a code to your phone.",
                              challenge=self._sign(institution.id))
        return LinkResult("failed", f"{institution.name} did not accept that username or "
                                    "password. Check them and try again.")

    def submit_code(self, institution: Institution, challenge: str, code: str) -> LinkResult:
        if not hmac.compare_digest(challenge or "", self._sign(institution.id)):
            return LinkResult("failed", "That code has expired; start again.")
        if (code or "").strip() != self.CODE:
            return LinkResult("needs_code", "That code is not right; try again.", challenge)
        return LinkResult("connected")

    @staticmethod
    def _sign(institution_id: str) -> str:
        key = settings().secret_key.encode()
        return hmac.new(key, f"sandbox-mfa:{institution_id}".encode(), hashlib.sha256).hexdigest()
