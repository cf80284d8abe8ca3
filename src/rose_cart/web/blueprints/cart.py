"""Cart pages and forms: the whole cart, the overview, one page's cart, add/change/remove
products, remove bookings, change or remove tickets."""

from __future__ import annotations

from quart import Blueprint, Response, flash, g, redirect, render_template, request
from quart.typing import ResponseReturnValue

from rose_cart.domain.errors import PageNotFound
from rose_cart.web.context import check_csrf, ensure_identity, identity, services
from rose_cart.web.rendering import render_page

bp = Blueprint("cart", __name__)


async def _form_next(default: str) -> str:
    form = await request.form
    candidate = form.get("next") or ""
    if candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return default


@bp.get("/cart/")
async def whole_cart() -> str:
    # The page and its header badge share one read of the cart.
    cart, g.cart_summary = await services().cart.cart_and_summary(identity())
    return await render_page("cart/cart.html", cart=cart, groups=cart.groups())


@bp.get("/cart/overview/")
async def overview() -> str:
    cart = await services().cart.cart(identity())
    return await render_template("cart/overview.html", cart=cart, groups=cart.groups())


@bp.get("/cart/<page_slug>/")
async def page_cart(page_slug: str) -> str:
    page = await services().catalog.page_by_slug(page_slug)
    if page is None:
        raise PageNotFound()
    cart = await services().cart.cart(identity())
    group = cart.group_for(page_slug)
    return await render_template("cart/page_cart.html", cart=cart, page=page, group=group)


async def _after_change(message: str, default_next: str) -> ResponseReturnValue:
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "cart-mini":
        # Shown in place right now; flashing it as well would show it again on the next page.
        summary = await services().cart.summary(identity())
        html = await render_template(
            "fragments/cart_mini_oob.html", summary=summary, message=message
        )
        return Response(html, mimetype="text/html")
    await flash(message, "success")
    return redirect(await _form_next(default_next), 303)


@bp.post("/cart/add/")
async def add() -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    change = await services().cart.add(
        ensure_identity(), form.get("product_id", ""), form.get("quantity", "1") or "1"
    )
    return await _after_change(
        f"Added {change.title} to your cart (now {change.quantity}).", "/cart/"
    )


@bp.post("/cart/items/<product_id>/")
async def set_quantity(product_id: str) -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    change = await services().cart.set_quantity(identity(), product_id, form.get("quantity", ""))
    message = (
        f"Removed {change.title}."
        if change.quantity == 0
        else f"{change.title}: quantity set to {change.quantity}."
    )
    return await _after_change(message, "/cart/")


@bp.post("/cart/items/<product_id>/remove/")
async def remove(product_id: str) -> ResponseReturnValue:
    await check_csrf()
    change = await services().cart.remove(identity(), product_id)
    return await _after_change(f"Removed {change.title}.", "/cart/")


@bp.post("/cart/bookings/<entry_id>/remove/")
async def remove_booking(entry_id: str) -> ResponseReturnValue:
    await check_csrf()
    change = await services().cart.remove_booking(identity(), entry_id)
    return await _after_change(f"Removed your booking for {change.title}.", "/cart/")


def _tickets_message(title: str, quantity: int) -> str:
    if quantity == 0:
        return f"Removed your {title} tickets."
    return f"{title}: {quantity} ticket{'' if quantity == 1 else 's'}."


@bp.post("/cart/tickets/<ticket_type_id>/")
async def set_tickets(ticket_type_id: str) -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    change = await services().cart.set_tickets(identity(), ticket_type_id, form.get("quantity", ""))
    return await _after_change(_tickets_message(change.title, change.quantity), "/cart/")


@bp.post("/cart/tickets/<ticket_type_id>/remove/")
async def remove_tickets(ticket_type_id: str) -> ResponseReturnValue:
    await check_csrf()
    change = await services().cart.remove_tickets(identity(), ticket_type_id)
    return await _after_change(_tickets_message(change.title, 0), "/cart/")
