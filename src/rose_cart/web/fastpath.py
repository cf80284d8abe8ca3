"""The edge of the app: what every answer gets, and the summary and cart-mini served before
Quart when nothing but the cache is needed.

Every answer gets the security headers, the caching rules of ``web.caching`` and a line in
the request log here, on the ASGI messages themselves: as Quart hooks they went through
werkzeug's header objects and Quart's hook machinery on every request.

Every page view of every service asks for the visitor's cart summary (and the cart-mini
badge made of it). On a cache hit the answer is one cache round trip; Quart's request
machinery (request and app contexts, the session, hooks, the response object) cost more
than that. This ASGI layer answers those two GETs itself, with the same body and headers
as the Quart view, but only in the plain case: a cookie verified and remembered by the
session interface, no query string, no adoption or owed bookings pending, a login that is
still current, and a cart-mini already rendered for that summary. Anything else, and any
error, goes to Quart unchanged, where the views and hooks do the whole work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from quart import Quart

from rose_cart.domain.identity import CartIdentity
from rose_cart.services.container import Services
from rose_cart.web.blueprints.internal import rendered_cart_mini
from rose_cart.web.caching import FRAGMENT_CACHE_CONTROL, caching_headers
from rose_cart.web.context import identity_of
from rose_cart.web.hooks import BOOKINGS_OWED, SECURITY_HEADERS, access_log, loggable_path
from rose_cart.web.sessions import VerifiedCookieSessionInterface

SUMMARY_PATH = "/internal/cart/summary"
CART_MINI_PATH = "/internal/fragments/cart-mini"
_JSON = b"application/json"
_HTML = b"text/html; charset=utf-8"

#: ASGI's scope, receive and send, and an app; loosely typed, as only a few keys are read.
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


_SECURITY = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS]
_CACHE_CONTROL = b"cache-control"
_VARY = b"vary"


def with_edge_headers(headers: list[tuple[bytes, bytes]], path: str) -> list[tuple[bytes, bytes]]:
    """An answer's headers with the security headers it does not set itself, and, unless it
    says how it may be kept, the caching rules for its path (``web.caching``)."""
    names = {name.lower() for name, _ in headers}
    out = list(headers)
    out.extend(pair for pair in _SECURITY if pair[0] not in names)
    if _CACHE_CONTROL not in names:
        cache_control, vary = caching_headers(path)
        if cache_control is not None:
            out.append((_CACHE_CONTROL, cache_control))
        if vary is not None:
            for i, (name, value) in enumerate(out):
                if name.lower() == _VARY:
                    if vary.lower() not in {v.strip().lower() for v in value.split(b",")}:
                        out[i] = (name, value + b", " + vary)
                    break
            else:
                out.append((_VARY, vary))
    return out


class FragmentFastPath:
    """ASGI middleware in front of the Quart app (``app.asgi_app``)."""

    def __init__(self, app: Quart, inner: ASGIApp) -> None:
        self._app = app
        self._inner = inner
        self._cookie = str(app.config["SESSION_COOKIE_NAME"])
        self._cookie_prefix = self._cookie + "="
        self._headers: list[tuple[bytes, bytes]] = [
            (b"cache-control", FRAGMENT_CACHE_CONTROL.encode()),
            (b"vary", b"Cookie"),
            *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and (scope["path"] == SUMMARY_PATH or scope["path"] == CART_MINI_PATH)
        ):
            started = time.perf_counter()
            try:
                answer = await self._answer(scope)
            except Exception:  # noqa: BLE001 - Quart's view will meet it and answer properly
                answer = None
            if answer is not None:
                body, content_type = answer
                headers = [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    *self._headers,
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                if access_log.isEnabledFor(logging.INFO):
                    took = (time.perf_counter() - started) * 1000
                    access_log.info("GET %s 200 %.1f ms", scope["path"], took)
                return
        if scope["type"] != "http":
            await self._inner(scope, receive, send)
            return
        started = time.perf_counter()
        path = _app_path(scope)

        async def with_edge(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_edge_headers(list(message.get("headers", ())), path)
                if access_log.isEnabledFor(logging.INFO):
                    took = (time.perf_counter() - started) * 1000
                    access_log.info(
                        "%s %s %s %.1f ms",
                        scope["method"],
                        loggable_path(path),
                        message["status"],
                        took,
                    )
            await send(message)

        await self._inner(scope, receive, with_edge)

    async def _answer(self, scope: Scope) -> tuple[bytes, bytes] | None:
        """The body and content type of the answer, or None to leave the request to Quart."""
        data = self._session(scope)
        if data is None:
            return None
        who = identity_of(data)
        if who.user_id is not None and (who.session_id or data.get(BOOKINGS_OWED)):
            return None  # an adoption is due: the hooks do it
        built = cast(Services, self._app.extensions["rose_cart"])
        if who.user_id is None:
            text = await built.cart.summary_json(who)
        else:
            # Both questions go to the cache in one write: the pipelined client sends what
            # one turn of the event loop asks.
            current, text = await asyncio.gather(
                built.logins.is_current(who.user_id, data.get("login")),
                built.cart.summary_json(CartIdentity(user_id=who.user_id)),
            )
            if not current:
                return None  # an ended login: the hooks take it out of the cookie
        if scope["path"] == SUMMARY_PATH:
            return text.encode(), _JSON
        html = rendered_cart_mini(text)
        return (html.encode(), _HTML) if html is not None else None

    def _session(self, scope: Scope) -> dict[str, Any] | None:
        """The session cookie's contents when the interface has verified and remembered it
        (a visitor's first request goes to Quart, which verifies it); {} for no cookie."""
        raw = [v for k, v in scope["headers"] if k == b"cookie"]
        if not raw:
            return {}
        cookie = None
        for header in raw:
            for part in header.decode("latin-1").split(";"):
                part = part.strip()
                if part.startswith(self._cookie_prefix):
                    if cookie is not None:
                        return None  # two of them: as Quart would pick
                    cookie = part[len(self._cookie_prefix) :]
        if cookie is None:
            return {}
        interface = self._app.session_interface
        if not isinstance(interface, VerifiedCookieSessionInterface):
            return None
        return interface.remembered(self._app, cookie)


def _app_path(scope: Scope) -> str:
    """The path as the app sees it (Quart's ``request.path``): below where it is mounted."""
    path = str(scope["path"])
    root = str(scope.get("root_path") or "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path
