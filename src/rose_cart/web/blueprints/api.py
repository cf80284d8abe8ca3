"""JSON API for headless clients (DESIGN §11), same session cookie as the pages.

Each route declares its contract (``web/contract.py``): the models that validate its body,
query and headers and shape its answer, and the errors it answers with. The OpenAPI document
at ``/api/v1/openapi.json`` is generated from exactly these declarations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from quart import Blueprint, Response, jsonify, request

from rose_cart.domain.errors import (
    CartChanged,
    CartEmpty,
    CartError,
    EntryNotFound,
    IdempotencyKeyReused,
    InvalidAmount,
    InvalidIdempotencyKey,
    InvalidQuantity,
    InvalidRequest,
    MixedCurrency,
    MultiplePages,
    NotFound,
    NotRefundable,
    OrderNotFound,
    OrderNotPayable,
    PageNotFound,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    ProductNotFound,
    ProductUnavailable,
    QuantityTooLarge,
    RefundExceedsPayment,
    SiblingUnavailable,
    SoldOut,
    TicketTypeNotFound,
    TooManyLines,
)
from rose_cart.services.admin import parse_filter
from rose_cart.web import api_models as m
from rose_cart.web.bodies import InvalidJson
from rose_cart.web.context import admin, ensure_identity, identity, services
from rose_cart.web.contract import body, errors, headers, openapi_document, query, returns
from rose_cart.web.serialize import cart_json
from rose_cart.web.serialize_orders import (
    admin_order_json,
    admin_order_summary_json,
    order_json,
    order_summary_json,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class JsonRequired(CartError):
    code = "json_required"
    status = 415
    message = "Send the body as JSON (Content-Type: application/json)."


class CrossSiteRefused(CartError):
    code = "cross_site_request"
    status = 403
    message = "Requests from other sites are not accepted."


@bp.before_request
async def guard() -> None:
    """Refuse cross-site writes, and bodies that are not JSON (a request without a body
    needs no Content-Type)."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        host = urlsplit(origin).netloc
        if host != request.host:
            raise CrossSiteRefused()
    elif origin == "null":
        raise CrossSiteRefused()
    if request.mimetype != "application/json" and await request.get_data(as_text=False):
        raise JsonRequired()


def admin_only(func: F) -> F:
    """Anyone but an admin is told the route does not exist, whatever they sent."""

    @wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        services().admin.require(admin())
        return await func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: What every write may be answered with before the route itself is reached.
WRITE = (CrossSiteRefused,)
#: ... and every write with a body.
BODY = (*WRITE, JsonRequired, InvalidJson, InvalidRequest)


async def _cart() -> dict[str, Any]:
    who = identity()
    return cart_json(await services().cart.cart(who), who.user_id)


@bp.get("/cart")
@errors(SiblingUnavailable)
@returns(m.Cart)
async def get_cart() -> dict[str, Any]:
    """The visitor's cart, grouped by page"""
    return await _cart()


@bp.post("/cart/items")
@errors(
    *BODY,
    InvalidQuantity,
    QuantityTooLarge,
    ProductNotFound,
    ProductUnavailable,
    TooManyLines,
    SiblingUnavailable,
)
@returns(m.Cart, 201)
@body(m.AddItem)
async def add_item(data: m.AddItem) -> dict[str, Any]:
    """Add a product (to its line, if it has one already)

    quantity_too_large names the product's own maximum (at most 99).
    """
    who = ensure_identity()
    # The add and the cart it answers with are read in one go.
    _, cart = await services().cart.add_and_show(who, data.product_id, data.quantity)
    return cart_json(cart, who.user_id)


@bp.patch("/cart/items/<product_id>")
@errors(*BODY, InvalidQuantity, QuantityTooLarge, ProductNotFound, SiblingUnavailable)
@returns(m.Cart)
@body(m.SetQuantity)
async def set_item(product_id: str, data: m.SetQuantity) -> dict[str, Any]:
    """Set a line's quantity (0 removes it)"""
    await services().cart.set_quantity(identity(), product_id, data.quantity)
    return await _cart()


@bp.delete("/cart/items/<product_id>")
@errors(*WRITE, ProductNotFound, SiblingUnavailable)
@returns(m.Cart)
async def delete_item(product_id: str) -> dict[str, Any]:
    """Remove a line"""
    await services().cart.remove(identity(), product_id)
    return await _cart()


@bp.delete("/cart/bookings/<entry_id>")
@errors(*WRITE, EntryNotFound, SiblingUnavailable)
@returns(m.Cart)
async def delete_booking(entry_id: str) -> dict[str, Any]:
    """Take a booking out of the cart (entry_not_found when it is not in it)"""
    await services().cart.remove_booking(identity(), entry_id)
    return await _cart()


@bp.patch("/cart/tickets/<ticket_type_id>")
@errors(*BODY, InvalidQuantity, QuantityTooLarge, TicketTypeNotFound, SoldOut, SiblingUnavailable)
@returns(m.Cart)
@body(m.SetQuantity)
async def set_tickets(ticket_type_id: str, data: m.SetQuantity) -> dict[str, Any]:
    """Set how many tickets of a type already in the cart it holds (0 removes them)

    sold_out, with the events service's message, when fewer are left.
    """
    await services().cart.set_tickets(identity(), ticket_type_id, data.quantity)
    return await _cart()


@bp.delete("/cart/tickets/<ticket_type_id>")
@errors(*WRITE, TicketTypeNotFound, SiblingUnavailable)
@returns(m.Cart)
async def delete_tickets(ticket_type_id: str) -> dict[str, Any]:
    """Take a ticket type's tickets out of the cart"""
    await services().cart.remove_tickets(identity(), ticket_type_id)
    return await _cart()


@bp.post("/checkout")
@errors(
    *BODY,
    InvalidIdempotencyKey,
    PageNotFound,
    CartEmpty,
    MixedCurrency,
    MultiplePages,
    ProductUnavailable,
    SoldOut,
    CartChanged,
    OrderNotPayable,
    IdempotencyKeyReused,
    PaymentProviderUnavailable,
    PaymentProviderRejected,
    SiblingUnavailable,
)
@returns(m.CheckoutResult, 201)
@headers(m.CheckoutHeaders)
@body(m.CheckoutRequest, optional=True)
async def checkout(data: m.CheckoutRequest, headers: m.CheckoutHeaders) -> dict[str, Any]:
    """Check out one page's lines, the co-op shop's own (site), or the whole cart when it
    holds one page's lines

    Answers with SumUp's payment page. The same Idempotency-Key with the same request gives
    the same order; with another page or a changed cart, idempotency_key_reused.
    """
    result = await services().checkout.checkout(
        identity(), data.page_slug or None, headers.idempotency_key, site=data.site
    )
    order = result.order
    return {
        "order_id": order.id,
        "status": order.status.value,
        "total": order.total_money.as_str(),
        "currency": order.currency,
        "payment_url": result.payment_url,
    }


@bp.get("/orders")
@returns(list[m.OrderSummary])
async def list_orders() -> list[dict[str, Any]]:
    """The visitor's orders, newest first"""
    orders = await services().orders.list_for(identity())
    return [order_summary_json(o) for o in orders]


@bp.get("/orders/<order_id>")
@errors(OrderNotFound)
@returns(m.Order)
async def get_order(order_id: str) -> dict[str, Any]:
    """One of the visitor's orders (anyone else's: order_not_found)"""
    return order_json(await services().orders.view(identity(), order_id))


@bp.post("/orders/<order_id>/check")
@errors(*WRITE, OrderNotFound, PaymentProviderUnavailable)
@returns(m.Order)
async def check_order(order_id: str) -> dict[str, Any]:
    """Ask SumUp again about the order's payment (takes no body)"""
    view = await services().orders.view(identity(), order_id, check=True)
    if view.check_error is not None:
        raise view.check_error
    return order_json(view)


@bp.get("/admin/orders")
@errors(NotFound, InvalidRequest)
@admin_only
@returns(list[m.AdminOrderSummary])
@query(m.AdminOrdersQuery)
async def admin_list_orders(query: m.AdminOrdersQuery) -> list[dict[str, Any]]:
    """Every order, newest first, for admins (anyone else: not_found)"""
    found = parse_filter(
        query.status.value if query.status else None, query.page_slug, query.needs_attention
    )
    orders = await services().admin.list(admin(), found)
    return [admin_order_summary_json(o) for o in orders]


@bp.get("/admin/orders/<order_id>")
@errors(NotFound)
@admin_only
@returns(m.AdminOrder)
async def admin_get_order(order_id: str) -> dict[str, Any]:
    """One order with its payments, refunds, activities and commands (admins)"""
    return admin_order_json(await services().admin.view(admin(), order_id))


@bp.post("/admin/orders/<order_id>/refund")
@errors(
    *BODY,
    NotFound,
    InvalidAmount,
    RefundExceedsPayment,
    NotRefundable,
    PaymentProviderUnavailable,
    PaymentProviderRejected,
)
@admin_only
@returns(m.AdminOrder)
@body(m.RefundRequest, optional=True)
async def admin_refund(order_id: str, data: m.RefundRequest) -> dict[str, Any]:
    """Refund a paid order through SumUp: all that is left, or an amount (admins)"""
    view = await services().admin.refund(admin(), order_id, data.amount)
    return admin_order_json(view)


@bp.get("/openapi.json")
async def openapi() -> Response:
    """This document"""
    return jsonify(openapi_document())
