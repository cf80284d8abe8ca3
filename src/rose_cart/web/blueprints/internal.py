"""Endpoints for the platform's other services: summary, fragments, signed actions."""

from __future__ import annotations

import json
import time
from typing import Any

from quart import Blueprint, Response, jsonify, render_template, request

from rose_cart.domain.errors import BadInput, CartError, SiblingUnavailable
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.ids import positive_id
from rose_cart.domain.signing import verify
from rose_cart.web.bodies import read_json
from rose_cart.web.context import identity, services
from rose_cart.web.rendering import cart_mini_html

bp = Blueprint("internal", __name__, url_prefix="/internal")


class BadSignature(CartError):
    code = "bad_signature"
    status = 401
    message = "This internal call is not signed, or its signature is stale or wrong."


async def is_signed() -> bool:
    raw = await request.get_data(as_text=False)
    body = raw if isinstance(raw, bytes) else raw.encode()
    path = request.full_path if request.query_string else request.path
    return verify(
        services().internal_secret,
        request.method,
        path,
        request.headers.get("X-Rose-Timestamp"),
        request.headers.get("X-Rose-Signature"),
        body,
        int(time.time()),
    )


async def require_signature() -> None:
    if not await is_signed():
        raise BadSignature()


def _int_or_none(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    value = positive_id(raw)
    if value is None:
        raise BadInput("Ids must be positive whole numbers.")
    return value


async def target_identity() -> CartIdentity:
    """The caller's own cookie, or (signed calls only) the identity named in the query."""
    user_id = request.args.get("user_id")
    session_id = request.args.get("session_id")
    if user_id or session_id:
        await require_signature()
        return CartIdentity(user_id=_int_or_none(user_id), session_id=session_id or None)
    return identity()


@bp.get("/cart/summary")
async def summary() -> Response:
    text = await services().cart.summary_json(await target_identity())
    return Response(text, mimetype="application/json")


#: cart-mini's HTML by summary text: it depends on nothing else, and carts are few.
_CART_MINI: dict[str, str] = {}


def rendered_cart_mini(summary_text: str) -> str | None:
    """cart-mini's HTML for this summary, if it has been rendered already."""
    return _CART_MINI.get(summary_text)


@bp.get("/fragments/cart-mini")
async def cart_mini() -> str:
    """Called by every page view of every service: rendered straight from its template,
    without the page globals (session, CSRF, header badge) that full pages compute."""
    text = await services().cart.summary_json(await target_identity())
    html = _CART_MINI.get(text)
    if html is None:
        html = cart_mini_html(int(json.loads(text).get("count") or 0))
        if len(_CART_MINI) >= 1000:
            _CART_MINI.clear()
        _CART_MINI[text] = html
    return html


@bp.get("/fragments/account-nav-item")
async def account_nav_item() -> str:
    return await render_template("fragments/account_nav_item.html")


async def _signed_json() -> dict[str, Any]:
    await require_signature()
    data = await read_json()
    if not isinstance(data, dict):
        raise BadInput("The body must be a JSON object.")
    return data


@bp.post("/actions/adopt-cart-for-user")
async def adopt_cart_for_user() -> Response:
    data = await _signed_json()
    user_id = _int_or_none(data.get("user_id"))
    session_id = data.get("session_id")
    if user_id is None or not isinstance(session_id, str) or not session_id:
        raise BadInput("Give user_id and session_id.")
    adoption = await services().cart.adopt(user_id, session_id)
    if not adoption.bookings_adopted:
        # The cart's part is done; the caller retries, which moves nothing twice.
        raise SiblingUnavailable(
            "The cart was adopted, but the events service did not take the bookings yet."
        )
    return jsonify({"ok": True, "moved": adoption.moved, "merged": adoption.merged})


@bp.post("/actions/cart-changed")
async def cart_changed() -> Response:
    data = await _signed_json()
    user_id = _int_or_none(data.get("user_id"))
    session_id = data.get("session_id")
    if user_id is None and not (isinstance(session_id, str) and session_id):
        raise BadInput("Give user_id or session_id.")
    # Both, when both are given: the user's summary and the anonymous one are cached apart.
    await services().cart.forget_summary(
        CartIdentity(user_id=user_id), CartIdentity(session_id=session_id or None)
    )
    return jsonify({"ok": True})


@bp.get("/data/page-config")
async def page_config() -> Response:
    await require_signature()
    page_id = _int_or_none(request.args.get("page_id"))
    if page_id is None:
        raise BadInput("Give page_id.")
    return jsonify(await services().page_configs.get(page_id))


@bp.post("/actions/page-config-ensure")
async def page_config_ensure() -> Response:
    data = await _signed_json()
    return jsonify(
        await services().page_configs.ensure(
            data.get("page_id"),
            data.get("merchant_code"),
            data.get("api_key"),
            data.get("checkout_prefix"),
        )
    )
