"""Logins that a logout really ends, on every worker.

Each user has a login generation: a random token in the shared cache. A login's cookie
carries the generation current when it was made, and a request is logged in only while the
cookie's generation is still the user's current one. Logging out replaces it, so every
cookie of the user's logins until then — a copy kept from before the logout included — is
worthless from then on, whichever worker sees it.

Random rather than counted, so that losing the cache (eviction, a flush, a restart) can
only log people out: an ended login never becomes current again.
"""

from __future__ import annotations

import hmac
import secrets

from rose_cart.ports import Cache

#: As long as a session cookie lives (PERMANENT_SESSION_LIFETIME); each login renews it.
LOGIN_TTL_SECONDS = 30 * 24 * 3600


def generation_key(user_id: int) -> str:
    return f"login-generation:{user_id}"


class LoginSessions:
    def __init__(self, cache: Cache, ttl_seconds: int = LOGIN_TTL_SECONDS) -> None:
        self.cache = cache
        self.ttl = ttl_seconds

    async def start(self, user_id: int) -> str:
        """The generation a new login's cookie carries: the user's current one (other
        devices stay logged in), made when there is none."""
        key = generation_key(user_id)
        current = await self.cache.get(key) or secrets.token_urlsafe(16)
        await self.cache.set(key, current, self.ttl)
        return current

    async def end(self, user_id: int) -> None:
        """From now on, every cookie of this user's logins so far is not logged in."""
        await self.cache.set(generation_key(user_id), secrets.token_urlsafe(16), self.ttl)

    async def is_current(self, user_id: int, generation: object) -> bool:
        """True while a cookie with this generation is logged in. A generation the cache
        no longer has is not: the visitor logs in again."""
        if not isinstance(generation, str) or not generation:
            return False
        current = await self.cache.get(generation_key(user_id))
        return current is not None and hmac.compare_digest(
            current.encode(), generation.encode("utf-8", "surrogatepass")
        )
