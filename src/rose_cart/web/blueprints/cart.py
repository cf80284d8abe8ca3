"""Cart pages and forms: the whole cart, the overview, one page's cart, add/change/remove
products, remove bookings, change or remove tickets."""

from __future__ import annotations

import re
from typing import Any

from quart import Blueprint, Response, flash, g, redirect, render_template, request
from quart.typing import ResponseReturnValue

from rose_cart.domain.errors import CartError, PageNotFound
from rose_cart.web.context import check_csrf, ensure_identity, identity, services
from rose_cart.web.redirects import same_site_path
from rose_cart.web.rendering import render_page

bp = Blueprint("cart", __name__)


async def _form_next(default: str) -> str:
    return same_site_path((await request.form).get("next"), default)


#: The cart pages a change can be answered with, by the path of the page it was made on.
_CART_PAGE = re.compile(r"^/cart/(?:([A-Za-z0-9_.-]+)/)?$")


async def _whole_cart(status: int = 200, **extra: Any) -> Response:
    # The page and its header badge share one read of the cart.
    cart, g.cart_summary = await services().cart.cart_and_summary(identity())
    html = await render_page("cart/cart.html", cart=cart, groups=cart.groups(), **extra)
    return Response(html, status=status, mimetype="text/html")


async def _page_cart(page_slug: str, status: int = 200, **extra: Any) -> Response:
    page = await services().catalog.page_by_slug(page_slug)
    if page is None:
        raise PageNotFound()
    cart = await services().cart.cart(identity())
    group = cart.group_for(page_slug)
    html = await render_page("cart/page_cart.html", cart=cart, page=page, group=group, **extra)
    return Response(html, status=status, mimetype="text/html")


@bp.get("/cart/")
async def whole_cart() -> ResponseReturnValue:
    return await _whole_cart()


@bp.get("/cart/overview/")
async def overview() -> str:
    cart = await services().cart.cart(identity())
    return await render_page("cart/overview.html", cart=cart, groups=cart.groups())


@bp.get("/cart/<page_slug>/")
async def page_cart(page_slug: str) -> ResponseReturnValue:
    return await _page_cart(page_slug)


def _in_place_elsewhere() -> bool:
    """An htmx change made from a page that is not a cart page (the shop front's add
    buttons): it is answered with the header badge and the message, nothing else."""
    return bool(request.headers.get("HX-Request")) and request.headers.get("HX-Target") == (
        "cart-mini"
    )


async def _badge_and_message(
    message: str, category: str, status: int = 200, link: dict[str, str] | None = None
) -> Response:
    summary = await services().cart.summary(identity())
    html = await render_template(
        "fragments/cart_mini_oob.html",
        summary=summary,
        message=message,
        category=category,
        link=link,
    )
    return Response(html, status=status, mimetype="text/html")


async def _after_change(
    message: str, default_next: str, link: dict[str, str] | None = None
) -> ResponseReturnValue:
    if _in_place_elsewhere():
        # Shown in place right now; flashing it as well would show it again on the next page.
        return await _badge_and_message(message, "success", link=link)
    await flash(message, "success")
    return redirect(await _form_next(default_next), 303)


async def _refused(exc: CartError, default_next: str, **line: object) -> ResponseReturnValue:
    """A change the cart refused (it is as it was): the reason, where the visitor is
    looking, beside the cart as it really is. Answered with the refusal's own status;
    ``X-Cart-Refused`` tells the page's script to show it all the same."""
    refusal = {"code": exc.code, "message": exc.message, **line}
    response: Response
    if _in_place_elsewhere():
        response = await _badge_and_message(exc.message, "error", status=exc.status)
    else:
        target = await _form_next(default_next)
        match = _CART_PAGE.match(target)
        slug = match[1] if match else None
        if match is None or slug == "overview":
            await flash(exc.message, "error")
            return redirect(target, 303)
        if slug is None:
            response = await _whole_cart(exc.status, refusal=refusal)
        else:
            response = await _page_cart(slug, exc.status, refusal=refusal)
    response.headers["X-Cart-Refused"] = exc.code
    # The form's address is no page to come back to.
    response.headers["HX-Push-Url"] = "false"
    return response


async def _product_title(product_id: int, fallback: str) -> str:
    """A removed line's title: the cart names it by its id only, the catalog (cached)
    knows what it is called."""
    try:
        product = await services().catalog.product(product_id)
    except CartError:
        product = None
    return product.title if product is not None else fallback


@bp.post("/cart/add/")
async def add() -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    try:
        change = await services().cart.add(
            ensure_identity(), form.get("product_id", ""), form.get("quantity", "1") or "1"
        )
    except CartError as exc:
        return await _refused(exc, "/cart/")
    return await _after_change(
        f"Added {change.title} to your cart (now {change.quantity}).",
        "/cart/",
        link={"href": "/cart/", "text": "View your cart"},
    )


@bp.post("/cart/items/<product_id>/")
async def set_quantity(product_id: str) -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    try:
        change = await services().cart.set_quantity(
            identity(), product_id, form.get("quantity", "")
        )
    except CartError as exc:
        return await _refused(exc, "/cart/", product_id=product_id)
    if change.quantity == 0:
        message = f"Removed {await _product_title(change.product_id, change.title)}."
    else:
        message = f"{change.title}: quantity set to {change.quantity}."
    return await _after_change(message, "/cart/")


@bp.post("/cart/items/<product_id>/remove/")
async def remove(product_id: str) -> ResponseReturnValue:
    await check_csrf()
    try:
        change = await services().cart.remove(identity(), product_id)
    except CartError as exc:
        return await _refused(exc, "/cart/", product_id=product_id)
    title = await _product_title(change.product_id, change.title)
    return await _after_change(f"Removed {title}.", "/cart/")


@bp.post("/cart/bookings/<entry_id>/remove/")
async def remove_booking(entry_id: str) -> ResponseReturnValue:
    await check_csrf()
    try:
        change = await services().cart.remove_booking(identity(), entry_id)
    except CartError as exc:
        return await _refused(exc, "/cart/", entry_id=entry_id)
    return await _after_change(f"Removed your booking for {change.title}.", "/cart/")


def _tickets_message(title: str, quantity: int) -> str:
    if quantity == 0:
        return f"Removed your {title} tickets."
    return f"{title}: {quantity} ticket{'' if quantity == 1 else 's'}."


@bp.post("/cart/tickets/<ticket_type_id>/")
async def set_tickets(ticket_type_id: str) -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    try:
        change = await services().cart.set_tickets(
            identity(), ticket_type_id, form.get("quantity", "")
        )
    except CartError as exc:
        return await _refused(exc, "/cart/", ticket_type_id=ticket_type_id)
    return await _after_change(_tickets_message(change.title, change.quantity), "/cart/")


@bp.post("/cart/tickets/<ticket_type_id>/remove/")
async def remove_tickets(ticket_type_id: str) -> ResponseReturnValue:
    await check_csrf()
    try:
        change = await services().cart.remove_tickets(identity(), ticket_type_id)
    except CartError as exc:
        return await _refused(exc, "/cart/", ticket_type_id=ticket_type_id)
    return await _after_change(_tickets_message(change.title, 0), "/cart/")
