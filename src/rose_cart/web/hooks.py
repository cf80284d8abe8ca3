"""Request hooks: adoption on login, template globals, security headers."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from quart import Quart, Response, flash, g, request, session

from rose_cart.domain.money import Money
from rose_cart.services.checkout import checkout_path
from rose_cart.web.context import csrf_token, identity, services

#: Where the session remembers bookings the events service has not adopted yet:
#: [user id, anonymous session id, unix time of the next try].
BOOKINGS_OWED = "bookings_owed"
#: Asking a sibling that is down on every request would only slow every page down.
BOOKINGS_RETRY_SECONDS = 60


def register_hooks(app: Quart) -> None:
    @app.before_request
    async def adopt_anonymous_cart() -> None:
        """The first request that carries both a user and an anonymous cart adopts it. A
        sibling that is down never breaks the page: the lines and orders are adopted all
        the same, and bookings the events service could not take are asked for again on a
        later request, at most once a minute."""
        uid = session.get("uid")
        if uid is None or request.path.startswith("/static/"):
            return
        user_id, sid = int(uid), session.get("sid")
        if not sid:
            await _retry_owed_bookings(user_id)
            return
        adoption = await services().cart.adopt(user_id, str(sid))
        session.pop("sid", None)
        if not adoption.bookings_adopted:
            session[BOOKINGS_OWED] = [user_id, str(sid), _now() + BOOKINGS_RETRY_SECONDS]
        noun = "item" if adoption.items == 1 else "items"
        if adoption.merged:
            await flash(
                f"We merged the {adoption.items} {noun} you added before logging in "
                "into your cart.",
                "info",
            )
        elif adoption.moved:
            await flash(
                f"Your cart kept the {adoption.items} {noun} you added before logging in.",
                "info",
            )

    @app.context_processor
    async def globals_for_templates() -> dict[str, Any]:
        who = identity()
        summary = None
        # Only full pages show the header badge; fragments are given their summary, and the
        # sandbox stands for another site.
        if "cart_summary" in g:  # the page read the cart, and its summary with it
            summary = g.cart_summary
        elif not request.path.startswith(("/sandbox/", "/internal/")):
            summary = await services().cart.summary(who)
        return {
            "csrf_token": csrf_token,
            "checkout_path": checkout_path,
            # A fresh key per rendered checkout form: a double click sends the same one.
            "idempotency_key": lambda: secrets.token_urlsafe(16),
            "current_user_id": who.user_id,
            "current_username": session.get("username"),
            "cart_summary": summary,
            "dev_login": services().dev_login,
        }

    @app.template_filter("money")
    def money_filter(value: Money | None) -> str:
        return value.display() if value is not None else "—"

    @app.template_filter("decimal_money")
    def decimal_money_filter(value: Decimal, currency: str) -> str:
        return Money(value, currency).display()

    @app.after_request
    async def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'",
        )
        return response


def _now() -> float:
    return services().clock.now().timestamp()


async def _retry_owed_bookings(user_id: int) -> None:
    owed = session.get(BOOKINGS_OWED)
    if not owed:
        return
    try:
        owed_user, sid, retry_at = int(owed[0]), str(owed[1]), float(owed[2])
    except (TypeError, ValueError, IndexError):
        session.pop(BOOKINGS_OWED, None)
        return
    # Owed to whoever logged in then: another user on this browser must not get them.
    if owed_user != user_id or _now() < retry_at:
        return
    if await services().cart.adopt_bookings(user_id, sid):
        session.pop(BOOKINGS_OWED, None)
    else:
        session[BOOKINGS_OWED] = [user_id, sid, _now() + BOOKINGS_RETRY_SECONDS]
