"""Who may keep a response: nearly everything here is one visitor's own."""

from __future__ import annotations

from quart import Response, request

#: The same for everyone: left to the defaults (the sandbox stands for another site).
_NOT_PER_VISITOR = ("/static/", "/sandbox/", "/market/api/", "/api/v1/openapi.json")
#: Asked for on every page view of every service: the visitor's browser may keep them, no
#: shared cache may, and nothing else is done for them.
_FRAGMENTS = ("/internal/cart/summary", "/internal/fragments/")
FRAGMENT_CACHE_CONTROL = "private"


def per_visitor_caching(response: Response) -> None:
    """``private, no-store`` (and ``Vary: Cookie``) on every page and JSON answer that
    depends on the visitor's session, unless the handler said otherwise; ``private`` on the
    summary and cart-mini fragments."""
    if "Cache-Control" in response.headers:
        return
    path = request.path
    if path.startswith(_NOT_PER_VISITOR):
        return
    if path.startswith(_FRAGMENTS):
        response.headers["Cache-Control"] = FRAGMENT_CACHE_CONTROL
    else:
        response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
