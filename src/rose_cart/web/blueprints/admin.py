"""The admins' order pages: every order, filtered; one order with everything that happened
to it; refunds; parked commands back in the queue. Everyone else gets 404."""

from __future__ import annotations

from quart import Blueprint, flash, redirect, render_template, request
from quart.typing import ResponseReturnValue

from rose_cart.domain.order import OrderStatus
from rose_cart.services.admin import parse_filter
from rose_cart.web.context import admin, check_csrf, services

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/orders/")
async def orders() -> str:
    who = admin()
    query = parse_filter(
        request.args.get("status"), request.args.get("page"), request.args.get("attention")
    )
    found = await services().admin.list(who, query)
    return await render_template(
        "admin/orders.html",
        orders=found,
        query=query,
        statuses=list(OrderStatus),
    )


@bp.get("/orders/<order_id>/")
async def order(order_id: str) -> str:
    view = await services().admin.view(admin(), order_id)
    return await render_template("admin/order.html", admin_view=view, view=view.view)


@bp.post("/orders/<order_id>/refund/")
async def refund(order_id: str) -> ResponseReturnValue:
    await check_csrf()
    form = await request.form
    view = await services().admin.refund(admin(), order_id, form.get("amount", "").strip())
    order = view.view.order
    await flash(f"Refunded. {order.refunded_money.display()} refunded in all.", "success")
    return redirect(f"/admin/orders/{order.id}/", 303)


@bp.post("/orders/<order_id>/outbox/<record_id>/retry/")
async def retry(order_id: str, record_id: str) -> ResponseReturnValue:
    await check_csrf()
    view = await services().admin.retry(admin(), order_id, record_id)
    await flash("Put back in the queue; it runs again in a moment.", "success")
    return redirect(f"/admin/orders/{view.view.order.id}/", 303)
