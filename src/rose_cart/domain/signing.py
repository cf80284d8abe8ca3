"""Signatures for internal calls between the platform's services.

HMAC-SHA256 over method, path (with query), timestamp and body, with a shared secret.
"""

from __future__ import annotations

import hashlib
import hmac

MAX_SKEW_SECONDS = 300


def sign(secret: str, method: str, path: str, timestamp: int, body: bytes) -> str:
    message = b"\n".join([method.upper().encode(), path.encode(), str(timestamp).encode(), body])
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    method: str,
    path: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: int,
) -> bool:
    """True only for a fresh signature made with ``secret`` over exactly this request."""
    if not timestamp or not signature or not _is_timestamp(timestamp):
        return False
    ts = int(timestamp)
    if abs(now - ts) > MAX_SKEW_SECONDS:
        return False
    # As bytes: compare_digest refuses str with anything but ASCII in it.
    expected = sign(secret, method, path, ts, body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


def _is_timestamp(raw: str) -> bool:
    digits = raw[1:] if raw.startswith("-") else raw
    return 0 < len(digits) <= 12 and digits.isascii() and digits.isdigit()
