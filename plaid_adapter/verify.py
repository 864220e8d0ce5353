"""A Plaid webhook's signature, checked as Plaid specifies, with PyJWT (and
`cryptography` beneath it): nothing hand-rolled.

1. The `Plaid-Verification` header is a JWT; its header must say `alg: ES256` and
   name a key (`kid`).
2. The key comes from `/webhook_verification_key/get` by that id, and is cached
   (by id, in this process); an unknown id is fetched (a failed fetch is not tried
   again for a minute, so forged ids can't make us call Plaid in a loop). A key
   Plaid marks expired verifies nothing.
3. The JWT's signature must verify with that key (ES256 only), and its `iat` be at
   most five minutes old (and not from the future, a minute of clock skew allowed).
4. The SHA-256 of the raw body must equal the JWT's `request_body_sha256`
   (compared in constant time): a body changed in transit fails.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import jwt

from core.banking import banks
from core.platform import clock

MAX_AGE = timedelta(minutes=5)
SKEW = 60  # seconds an `iat` may be ahead of our clock
RETRY_UNKNOWN_KEY = 60.0  # seconds before fetching a key id that failed again
_KID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class Unverified(Exception):
    """Not a request Plaid signed (the message says which check failed)."""


class Verifier:
    def __init__(self, fetch_key: Callable[[str], dict]):
        self._fetch_key = fetch_key
        self._keys: dict[str, dict] = {}
        self._missing: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, body: bytes, token: str | None) -> dict:
        """The JWT's claims when every check passes; Unverified otherwise."""
        if not token:
            raise Unverified("no Plaid-Verification header")
        key = self._key(_kid(token))
        if key.get("expired_at") is not None:
            raise Unverified("the key that signed it has expired")
        claims = _decode(token, key)
        _check_age(claims["iat"])
        expected = str(claims.get("request_body_sha256", ""))
        if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), expected):
            raise Unverified("the body is not the one that was signed")
        return claims

    def _key(self, kid: str) -> dict:
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            if time.monotonic() - self._missing.get(kid, -RETRY_UNKNOWN_KEY) < RETRY_UNKNOWN_KEY:
                raise Unverified("unknown key id")
        try:
            key = self._fetch_key(kid)
        except banks.ProviderError as problem:
            with self._lock:
                self._missing[kid] = time.monotonic()
            raise Unverified(f"no key {kid[:40]} at Plaid ({problem.code})") from None
        with self._lock:
            self._keys[kid] = key
        return key


def _kid(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as problem:
        raise Unverified(f"not a JWT ({problem})") from None
    if header.get("alg") != "ES256":
        raise Unverified(f"signed with {str(header.get('alg'))[:10]}, not ES256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID.match(kid):
        raise Unverified("no usable key id")
    return kid


def _decode(token: str, key: dict) -> dict:
    try:
        public = jwt.PyJWK({**key, "alg": "ES256"}).key
        return jwt.decode(token, public, algorithms=["ES256"], leeway=SKEW,
                          options={"require": ["iat"]})
    except (jwt.PyJWTError, ValueError, TypeError) as problem:
        raise Unverified(f"the signature does not verify ({type(problem).__name__})") from None


def _check_age(issued) -> None:
    if not isinstance(issued, int | float):
        raise Unverified("no issue time")
    age = clock.now().timestamp() - float(issued)
    if age > MAX_AGE.total_seconds():
        raise Unverified(f"signed {int(age)} s ago: older than five minutes")
