"""The reference siblings' own pages: the shop front, the market's product list, and the
development login that stands in for the account service."""

from __future__ import annotations

import hashlib
import re
from typing import Any, cast

from quart import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from quart.typing import ResponseReturnValue

from rose_cart.domain.errors import BadInput, CartError
from rose_cart.ports import Product
from rose_cart.standalone.siblings import ReferenceBlog, ReferenceMarket
from rose_cart.web.bodies import json_object
from rose_cart.web.context import check_csrf
from rose_cart.web.redirects import same_site_path

bp = Blueprint("standalone", __name__, template_folder="templates")

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
#: How many upcoming events the shop front shows (the rest are on /events/).
SHOP_FRONT_EVENTS = 4


def _siblings() -> tuple[ReferenceMarket, ReferenceBlog]:
    extras = cast(dict[str, Any], current_app.extensions["rose_cart"].extras)
    return extras["market"], extras["blog"]


def _products_with_pages() -> list[dict[str, Any]]:
    market, blog = _siblings()
    rows = []
    for product in market.all_products():
        place = market.marketplaces[product.market_place_id]
        page = (
            blog.posts.get(place.container_id)
            if place.container_type == "page" and place.container_id is not None
            else None
        )
        rows.append({"product": product, "place": place, "page": page})
    return rows


@bp.get("/")
async def shop_front() -> str:
    market, blog = _siblings()
    rows = _products_with_pages()
    sections: list[dict[str, Any]] = []
    for page in blog.pages():
        products = [r["product"] for r in rows if r["page"] is not None and r["page"].id == page.id]
        if products:
            sections.append({"page": page, "products": products})
    site = [r["product"] for r in rows if r["page"] is None]
    if site:
        sections.append({"page": None, "products": site})
    upcoming: list[Any] = []
    if "events" in current_app.extensions["rose_cart"].extras:
        from rose_cart.standalone.events.web import events

        # The next date of each event, so one class on many Saturdays does not fill it.
        seen: set[tuple[int | None, str]] = set()
        for entry in await events().upcoming(limit=100):
            if (entry.page_post_id, entry.name) not in seen and len(upcoming) < SHOP_FRONT_EVENTS:
                seen.add((entry.page_post_id, entry.name))
                upcoming.append(entry)
    return await render_template("shop/front.html", sections=sections, upcoming=upcoming)


def _product_json(product: Product, place_slug: str, page_slug: str | None) -> dict[str, Any]:
    return {
        "id": product.id,
        "slug": product.slug,
        "title": product.title,
        "unit_price": format(product.unit_price, "f"),
        "regular_price": format(product.regular_price, "f") if product.regular_price else None,
        "currency": product.currency,
        "page_slug": page_slug,
        "marketplace_slug": place_slug,
        "available": product.available,
        "max_per_order": product.max_per_order,
    }


@bp.get("/market/api/products")
async def market_products() -> ResponseReturnValue:
    return jsonify(
        [
            _product_json(r["product"], r["place"].slug, r["page"].slug if r["page"] else None)
            for r in _products_with_pages()
        ]
    )


class DevLoginOff(CartError):
    code = "dev_login_disabled"
    status = 404
    message = "Development login is switched off."


def user_id_for(username: str) -> int:
    """A stable id per username, as the account service would keep."""
    return int(hashlib.sha256(username.lower().encode()).hexdigest()[:7], 16) + 1


@bp.post("/auth/dev-login")
async def dev_login() -> ResponseReturnValue:
    if not current_app.extensions["rose_cart"].dev_login:
        raise DevLoginOff()
    if request.mimetype == "application/json":
        username = str((await json_object()).get("username", "")).strip()
    else:
        await check_csrf()
        username = ((await request.form).get("username") or "").strip()
    if not _USERNAME.match(username):
        raise BadInput(
            "Choose a username of letters, digits, dots, dashes or underscores.", field="username"
        )
    user_id = user_id_for(username)
    session["uid"] = user_id
    session["username"] = username
    session["login"] = await current_app.extensions["rose_cart"].logins.start(user_id)
    # A new login, a new CSRF token: one read before logging in is worth nothing after.
    session.pop("csrf", None)
    if request.mimetype == "application/json":
        return jsonify({"user_id": session["uid"], "username": username})
    await flash(f"Logged in as {username}.", "success")
    return redirect(same_site_path((await request.form).get("next")), 303)


@bp.post("/auth/logout")
async def logout() -> ResponseReturnValue:
    if request.mimetype != "application/json":
        await check_csrf()
    uid = session.get("uid")
    if uid is not None:
        # Every cookie of this login, copies kept from before included, is logged out.
        await current_app.extensions["rose_cart"].logins.end(int(uid))
    session.clear()  # the anonymous cart and the CSRF token go too
    if request.mimetype == "application/json":
        return jsonify({"ok": True})
    await flash("Logged out.", "info")
    return redirect("/", 303)
