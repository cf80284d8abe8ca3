"""Checkout forms, SumUp's return page and SumUp's webhook."""

from __future__ import annotations

import logging

from quart import Blueprint, Response, redirect, render_template, request
from quart.typing import ResponseReturnValue

from rose_cart.domain.errors import CartError
from rose_cart.services.checkout import SITE_GROUP
from rose_cart.web.bodies import read_json
from rose_cart.web.context import check_csrf, identity, services

log = logging.getLogger(__name__)

bp = Blueprint("checkout", __name__)


async def _checkout(page_slug: str | None, *, site: bool = False) -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    result = await services().checkout.checkout(
        identity(), page_slug, form.get("idempotency_key"), site=site
    )
    return redirect(result.payment_url, 303)


@bp.post("/cart/checkout/")
async def checkout_whole_cart() -> ResponseReturnValue:
    return await _checkout(None)


@bp.post(f"/cart/{SITE_GROUP}/checkout/")
async def checkout_site_group() -> ResponseReturnValue:
    """The co-op shop's own items, whatever other sellers' items the cart holds."""
    return await _checkout(None, site=True)


@bp.post("/cart/<page_slug>/checkout/")
async def checkout_page(page_slug: str) -> ResponseReturnValue:
    return await _checkout(page_slug)


@bp.get("/checkout/return/<order_id>/")
async def return_page(order_id: str) -> str:
    view = await services().orders.view(identity(), order_id, check=True)
    return await render_template("orders/return.html", view=view)


@bp.post("/checkout/webhook/<order_id>/<token>/")
async def webhook(order_id: str, token: str) -> ResponseReturnValue:
    """SumUp's notification. Unsigned, so only a trigger: the status is fetched from SumUp."""
    body = await read_json()
    try:
        known = await services().orders.handle_webhook(order_id, token, body)
    except CartError as exc:
        # SumUp could not be asked just now; the reconciler will ask again shortly.
        log.warning("webhook for order %s not applied: %s", order_id, exc.code)
        known = True
    return Response("", status=204 if known else 404)
