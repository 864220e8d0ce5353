"""Tokens and the secrets around them: minting invite-link tokens, finding them by
digest, sealing any secret at rest (Fernet under ENCRYPTION_KEYS: link tokens, Slack
and bank access tokens, sign-in codes in stored messages — `sealed.py`), masking
links, and redacting log lines.

A link token is 128 random bits from `secrets`. The database keeps two things,
neither of which is a working link on its own:
- `digest`: HMAC-SHA256 of the token under SECRET_KEY, to find the invite;
- `sealed`: the token encrypted under ENCRYPTION_KEYS (Fernet), so a reminder can
  repeat the same link instead of breaking the one the client already has.
Both keys live in the environment, never in the database, and neither does a
working link: a stored message keeps its link masked (`AbCd…`, rebuilt from the
sealed token at send time), and log lines pass through `redact`. Rotation: put the new
key first (ENCRYPTION_KEYS) or move the old SECRET_KEY to SECRET_KEY_FALLBACKS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import Settings, settings

TOKEN_BYTES = 16  # 128 bits
TOKEN_LENGTH = 22  # urlsafe base64 of 16 bytes, unpadded


def mint() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(text: str) -> bool:
    return len(text) == TOKEN_LENGTH and all(c.isalnum() or c in "-_" for c in text)


def digest(token: str, key: str | None = None) -> str:
    key = key if key is not None else settings().secret_key
    return hmac.new(key.encode(), token.encode(), hashlib.sha256).hexdigest()


def candidate_digests(token: str, config: Settings | None = None) -> list[str]:
    """Digests under the current and every fallback SECRET_KEY (rotation)."""
    config = config or settings()
    return [digest(token, key) for key in (config.secret_key, *config.secret_key_fallbacks)]


def _fernet(config: Settings) -> MultiFernet:
    keys = list(config.encryption_keys) or [_derived_key(config.secret_key)]
    return MultiFernet([Fernet(k) for k in keys])


def _derived_key(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ledgersync-seal")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def seal(token: str, config: Settings | None = None) -> str:
    return _fernet(config or settings()).encrypt(token.encode()).decode()


def unseal(sealed: str, config: Settings | None = None) -> str | None:
    try:
        return _fernet(config or settings()).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def new_key() -> str:
    """A fresh key for ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


# --- tokens out of sight: what the database, logs and reports keep ----------------------

# A client's link (`/i/<22 characters>`), and a Slack linking page's
# (`/slack/link/<token>`: whatever follows, since nothing else lives there).
_LINK_TOKEN = re.compile(
    rf"(/i/(?=[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}(?![A-Za-z0-9_-]))|/slack/link/)([A-Za-z0-9_-]+)"
)
MASK = "…"


def masked(token: str) -> str:
    """The first four characters and an ellipsis: enough to tell links apart, never
    enough to open one (`AbCd…`)."""
    return token[:4] + MASK


def mask_link(text: str | None, token: str) -> str | None:
    """`text` with this token's link masked (what a stored message keeps)."""
    return None if text is None else text.replace(f"/i/{token}", f"/i/{masked(token)}")


def unmask_link(text: str | None, token: str) -> str | None:
    """The inverse of `mask_link`, at send time, from the sealed token."""
    return None if text is None else text.replace(f"/i/{masked(token)}", f"/i/{token}")


def redact(text: str) -> str:
    """Every link token in `text` masked: for log lines and error reports."""
    return _LINK_TOKEN.sub(lambda m: m.group(1) + masked(m.group(2)), text)
