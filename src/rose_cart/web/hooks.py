"""Request hooks: adoption on login, template globals, security headers."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from quart import Quart, Response, flash, request, session

from rose_cart.domain.money import Money
from rose_cart.services.checkout import checkout_path
from rose_cart.web.context import csrf_token, identity, services


def register_hooks(app: Quart) -> None:
    @app.before_request
    async def adopt_anonymous_cart() -> None:
        """The first request that carries both a user and an anonymous cart adopts it."""
        uid, sid = session.get("uid"), session.get("sid")
        if uid is None or not sid or request.path.startswith("/static/"):
            return
        adoption = await services().cart.adopt(int(uid), str(sid))
        session.pop("sid", None)
        if adoption.merged:
            noun = "item" if adoption.merged == 1 else "items"
            await flash(
                f"We merged {adoption.merged} {noun} from before you logged in into your cart.",
                "info",
            )
        elif adoption.moved:
            noun = "item" if adoption.moved == 1 else "items"
            await flash(
                f"Your cart kept the {adoption.moved} {noun} you added before logging in.", "info"
            )

    @app.context_processor
    async def globals_for_templates() -> dict[str, Any]:
        who = identity()
        summary = None
        # Only full pages show the header badge; fragments are given their summary, and the
        # sandbox stands for another site.
        if not request.path.startswith(("/sandbox/", "/internal/")):
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
