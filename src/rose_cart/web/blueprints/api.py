"""JSON API for headless clients (DESIGN §11), same session cookie as the pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Response, jsonify, request

from rose_cart.domain.errors import BadInput, CartError, InvalidQuantity
from rose_cart.services.admin import parse_filter
from rose_cart.web.context import admin, ensure_identity, identity, services
from rose_cart.web.openapi import openapi_document
from rose_cart.web.serialize import cart_json
from rose_cart.web.serialize_orders import (
    admin_order_json,
    admin_order_summary_json,
    order_json,
    order_summary_json,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class JsonRequired(CartError):
    code = "json_required"
    status = 415
    message = "Send the body as JSON (Content-Type: application/json)."


class InvalidJson(BadInput):
    code = "invalid_json"
    message = "The body must be a JSON object."


class CrossSiteRefused(CartError):
    code = "cross_site_request"
    status = 403
    message = "Requests from other sites are not accepted."


@bp.before_request
async def guard() -> None:
    """Refuse cross-site writes and bodies that are not JSON."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        host = urlsplit(origin).netloc
        if host != request.host:
            raise CrossSiteRefused()
    elif origin == "null":
        raise CrossSiteRefused()
    if request.method in {"POST", "PATCH", "PUT"} and request.mimetype != "application/json":
        raise JsonRequired()


async def json_body() -> dict[str, Any]:
    data = await request.get_json(silent=True)
    if data is None:
        data = {} if not await request.get_data() else None
    if not isinstance(data, dict):
        raise InvalidJson()
    return data


async def _cart_response(status: int = 200) -> Response:
    who = identity()
    response = jsonify(cart_json(await services().cart.cart(who), who.user_id))
    response.status_code = status
    return response


@bp.get("/cart")
async def get_cart() -> Response:
    return await _cart_response()


@bp.post("/cart/items")
async def add_item() -> Response:
    body = await json_body()
    who = ensure_identity()
    _, cart = await services().cart.add_and_show(
        who, body.get("product_id"), body.get("quantity", 1)
    )
    response = jsonify(cart_json(cart, who.user_id))
    response.status_code = 201
    return response


@bp.patch("/cart/items/<product_id>")
async def set_item(product_id: str) -> Response:
    body = await json_body()
    if "quantity" not in body:
        raise BadInput("Give a quantity (0 removes the line).")
    await services().cart.set_quantity(identity(), product_id, body["quantity"])
    return await _cart_response()


@bp.delete("/cart/items/<product_id>")
async def delete_item(product_id: str) -> Response:
    await services().cart.remove(identity(), product_id)
    return await _cart_response()


@bp.delete("/cart/bookings/<entry_id>")
async def delete_booking(entry_id: str) -> Response:
    await services().cart.remove_booking(identity(), entry_id)
    return await _cart_response()


@bp.patch("/cart/tickets/<ticket_type_id>")
async def set_tickets(ticket_type_id: str) -> Response:
    body = await json_body()
    if "quantity" not in body:
        raise InvalidQuantity("Give a quantity (0 removes the tickets).")
    await services().cart.set_tickets(identity(), ticket_type_id, body["quantity"])
    return await _cart_response()


@bp.delete("/cart/tickets/<ticket_type_id>")
async def delete_tickets(ticket_type_id: str) -> Response:
    await services().cart.remove_tickets(identity(), ticket_type_id)
    return await _cart_response()


@bp.post("/checkout")
async def checkout() -> Response:
    body = await json_body()
    page_slug = body.get("page_slug")
    if page_slug is not None and not isinstance(page_slug, str):
        raise BadInput("page_slug must be a string.")
    result = await services().checkout.checkout(
        identity(), page_slug or None, request.headers.get("Idempotency-Key")
    )
    order = result.order
    response = jsonify(
        {
            "order_id": order.id,
            "status": order.status.value,
            "total": order.total_money.as_str(),
            "currency": order.currency,
            "payment_url": result.payment_url,
        }
    )
    response.status_code = 201
    return response


@bp.get("/orders")
async def list_orders() -> Response:
    orders = await services().orders.list_for(identity())
    return jsonify([order_summary_json(o) for o in orders])


@bp.get("/orders/<order_id>")
async def get_order(order_id: str) -> Response:
    return jsonify(order_json(await services().orders.view(identity(), order_id)))


@bp.post("/orders/<order_id>/check")
async def check_order(order_id: str) -> Response:
    view = await services().orders.view(identity(), order_id, check=True)
    if view.check_error is not None:
        raise view.check_error
    return jsonify(order_json(view))


@bp.get("/admin/orders")
async def admin_list_orders() -> Response:
    query = parse_filter(
        request.args.get("status"),
        request.args.get("page_slug"),
        request.args.get("needs_attention"),
    )
    orders = await services().admin.list(admin(), query)
    return jsonify([admin_order_summary_json(o) for o in orders])


@bp.get("/admin/orders/<order_id>")
async def admin_get_order(order_id: str) -> Response:
    return jsonify(admin_order_json(await services().admin.view(admin(), order_id)))


@bp.post("/admin/orders/<order_id>/refund")
async def admin_refund(order_id: str) -> Response:
    services().admin.require(admin())
    body = await json_body()
    view = await services().admin.refund(admin(), order_id, body.get("amount"))
    return jsonify(admin_order_json(view))


@bp.get("/openapi.json")
async def openapi() -> Response:
    return jsonify(openapi_document())
