"""Quart's signed-cookie sessions, cheaper to open.

Every request opens the session, and the summary and cart-mini, called by every page view
of every service, do little else. Quart builds a new signing serializer per request and
verifies the cookie's signature each time; here the serializer is made once per secret, and
a cookie once verified is remembered (with its signing time, so it still expires on time)
while its contents are plain values that a request cannot change in place.
"""

from __future__ import annotations

import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from quart import Quart
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface
from quart.wrappers import BaseRequestWebsocket

_PLAIN = (str, int, float, bool, type(None))


class VerifiedCookieSessionInterface(SecureCookieSessionInterface):
    def __init__(self, max_entries: int = 10_000) -> None:
        self._serializer: tuple[Any, URLSafeTimedSerializer | None] | None = None
        self._verified: dict[str, tuple[int, dict[str, Any]]] = {}
        self._max = max_entries

    def get_signing_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        made = self._serializer
        if made is None or made[0] != keys:
            made = self._serializer = (keys, super().get_signing_serializer(app))
            self._verified.clear()
        return made[1]

    async def open_session(
        self, app: Quart, request: BaseRequestWebsocket
    ) -> SecureCookieSession | None:
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie is None:
            return self.session_class()
        known = self.remembered(app, cookie)
        if known is not None:
            return self.session_class(known)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = signer.loads(cookie, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(v, _PLAIN) for v in data.values()):
            if len(self._verified) >= self._max:
                self._verified.clear()
            self._verified[cookie] = (int(signed_at.timestamp()), dict(data))
        return self.session_class(data)

    def remembered(self, app: Quart, cookie: str) -> dict[str, Any] | None:
        """The contents of a cookie verified before, with the current keys and still within
        its lifetime; None when it must be verified (again). Read only: the dict is shared."""
        self.get_signing_serializer(app)  # forgets every cookie when the keys changed
        known = self._verified.get(cookie)
        if known is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        return known[1] if 0 <= int(time.time()) - known[0] <= max_age else None
