"""Who may keep a response: nearly everything here is one visitor's own."""

from __future__ import annotations

#: The same for everyone: left to the defaults (the sandbox stands for another site).
_NOT_PER_VISITOR = ("/static/", "/sandbox/", "/market/api/", "/api/v1/openapi.json")
#: Asked for on every page view of every service: the visitor's browser may keep them, no
#: shared cache may, and nothing else is done for them.
_FRAGMENTS = ("/internal/cart/summary", "/internal/fragments/")
FRAGMENT_CACHE_CONTROL = "private"


def caching_headers(path: str) -> tuple[bytes | None, bytes | None]:
    """Cache-Control and Vary for an answer at ``path`` that did not say how it may be kept:
    ``private, no-store`` and ``Vary: Cookie`` on every page and JSON answer that depends
    on the visitor's session; ``private`` on the summary and cart-mini fragments; nothing
    for what is the same for everyone."""
    if path.startswith(_NOT_PER_VISITOR):
        return None, None
    if path.startswith(_FRAGMENTS):
        return FRAGMENT_CACHE_CONTROL.encode(), b"Cookie"
    return b"private, no-store", b"Cookie"
