"""Request hooks: the request log, adoption on login, template globals, security headers."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup
from quart import Quart, Response, flash, g, request, send_from_directory, session, url_for

from rose_cart.domain.money import Money
from rose_cart.web.cart_rows import (
    cart_groups,
    cart_rows,
    checkout_form,
    idempotency_key,
    money,
)
from rose_cart.web.context import check_login, csrf_token, identity, services
from rose_cart.web.rendering import cart_mini_html, template

#: Where the session remembers bookings the events service has not adopted yet:
#: [user id, anonymous session id, unix time of the next try].
BOOKINGS_OWED = "bookings_owed"
#: Asking a sibling that is down on every request would only slow every page down.
BOOKINGS_RETRY_SECONDS = 60

#: One line per request, as a web server's access log has it (written at the app's edge,
#: ``web.fastpath``).
access_log = logging.getLogger("rose_cart.access")
#: A webhook's address carries its secret token: the log shows the order, never the token.
_WEBHOOK_PATH = re.compile(r"^(/checkout/webhook/[^/]+/)[^/]+")
#: Sent with every answer (at the app's edge, ``web.fastpath``), unless the view set its own.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'",
    ),
)
#: Times are shown to people in the co-op's own time zone, named (GMT or BST).
DISPLAY_ZONE = "Europe/London"


def _display_zone() -> tzinfo:
    try:
        return ZoneInfo(DISPLAY_ZONE)
    except ZoneInfoNotFoundError:  # a machine without time zone data: UTC, named so
        return UTC


def loggable_path(path: str) -> str:
    """The request's path as the request log shows it: no query string, no secrets."""
    return _WEBHOOK_PATH.sub(r"\1…", path)


def local_time(value: datetime | None, fmt: str = "%d %b %Y, %H:%M", named: bool = True) -> str:
    """A stored time in the co-op's time zone, with the zone's name unless ``named`` is
    off: "21 Nov 2025, 20:36 GMT". Stored times are UTC (a naive one is taken as UTC)."""
    if value is None:
        return ""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    local = aware.astimezone(_display_zone())
    return f"{local.strftime(fmt)} {local.tzname() or 'UTC'}" if named else local.strftime(fmt)


def register_hooks(app: Quart) -> None:
    @app.before_request
    async def ended_logins_are_logged_out() -> None:
        if not request.path.startswith(("/static/", "/sandbox/")):
            await check_login()

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        """Browsers ask for it on pages that name no icon (the JSON API, the sandbox)."""
        assert app.static_folder is not None
        return await send_from_directory(app.static_folder, "favicon.svg", mimetype="image/svg+xml")

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
            # Taken, not read: an app context can outlive the request (tests push one
            # around several), and a summary must never be shown for a later request.
            summary = g.pop("cart_summary")
        elif not request.path.startswith(("/sandbox/", "/internal/")):
            summary = await services().cart.summary(who)
        return {
            "csrf_token": csrf_token,
            "idempotency_key": idempotency_key,
            "current_user_id": who.user_id,
            "current_username": session.get("username"),
            "cart_summary": summary,
            "dev_login": services().dev_login,
        }

    # Where a static file is served from only changes with where the app is mounted, and
    # building its address anew is the dearest part of a page's head (five on every page).
    static_urls: dict[tuple[str, str], str] = {}

    @app.template_global()
    def static_url(filename: str) -> str:
        """``url_for("static", filename=...)``, built once per mount point."""
        key = (request.root_path, filename)
        url = static_urls.get(key)
        if url is None:
            url = static_urls[key] = url_for("static", filename=filename)
        return url

    #: The page head's icon, styles and scripts, as they are where the app is mounted.
    head_tags: dict[str, Markup] = {}

    @app.template_global()
    def head_assets() -> Markup:
        """The icon, style sheet and script tags of every page's head, built once per mount
        point (five addresses built and escaped anew were the dearest part of the head)."""
        root = request.root_path
        tags = head_tags.get(root)
        if tags is None:
            tags = head_tags[root] = Markup(
                template("fragments/head_assets.html").render(static_url=static_url)
            )
        return tags

    # The header's badge and account link are the same for every visitor with as many
    # items: rendered once each, not included anew (a context of their own) on every page.
    @app.template_global()
    def cart_mini(summary: dict[str, Any] | None) -> Markup:
        """The header's badge for a cart summary (None: an empty cart)."""
        return cart_mini_html(int(summary.get("count") or 0) if summary else 0)

    account_links: list[Markup] = []

    @app.template_global()
    def account_nav_item() -> Markup:
        """fragments/account_nav_item.html, the same for everyone."""
        if not account_links:
            account_links.append(Markup(template("fragments/account_nav_item.html").render()))
        return account_links[0]

    app.add_template_filter(money, "money")
    app.add_template_global(cart_rows, "cart_rows")
    app.add_template_global(cart_groups, "cart_groups")
    app.add_template_global(checkout_form, "checkout_form")

    app.add_template_filter(local_time, "local_time")

    @app.template_filter("decimal_money")
    def decimal_money_filter(value: Decimal, currency: str) -> str:
        return Money(value, currency).display()


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
