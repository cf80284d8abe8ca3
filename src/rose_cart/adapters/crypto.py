"""Encryption at rest for per-page SumUp API keys."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def _fernet(secret: str) -> Fernet:
    # The derivation is part of the stored data: changing it makes every stored key unreadable.
    digest = hashlib.sha256(("rose-cart page-config:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class SecretBox:
    """Fernet (AES-128-CBC + HMAC) with keys derived from the configured secrets.

    ``secrets`` are newest first: the newest encrypts, any of them decrypts, so a new
    secret can be put in front while the old one still reads what is stored.
    """

    #: How many read tokens are remembered: a few per seller's account at most.
    MEMO_SIZE = 256

    def __init__(self, *secrets: str) -> None:
        if not secrets:
            raise ValueError("SecretBox needs at least one secret")
        self._fernet = MultiFernet([_fernet(secret) for secret in secrets])
        # The same few tokens (a page's key, the key each payment attempt keeps) are read
        # on every checkout and check; the secrets never change while the box lives, so a
        # token once read always reads the same. Only readable tokens are kept.
        self._read: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str | None:
        """The plaintext, or None when no configured secret made the token, or it was altered."""
        known = self._read.get(token)
        if known is not None:
            return known
        try:
            plaintext = self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None
        if len(self._read) >= self.MEMO_SIZE:
            self._read.clear()
        self._read[token] = plaintext
        return plaintext

    def rotate(self, token: str) -> str | None:
        """The same plaintext encrypted with the newest secret, or None when it cannot be read."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None
