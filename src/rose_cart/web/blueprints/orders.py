"""The visitor's orders."""

from __future__ import annotations

from quart import Blueprint, flash, redirect, render_template
from quart.typing import ResponseReturnValue

from rose_cart.web.context import check_csrf, identity, services

bp = Blueprint("orders", __name__)


@bp.get("/orders/")
async def list_orders() -> str:
    orders = await services().orders.list_for(identity())
    return await render_template("orders/list.html", orders=orders)


@bp.get("/orders/<order_id>/")
async def show_order(order_id: str) -> str:
    view = await services().orders.view(identity(), order_id)
    return await render_template("orders/detail.html", view=view)


@bp.post("/orders/<order_id>/check/")
async def check_again(order_id: str) -> ResponseReturnValue:
    await check_csrf()
    view = await services().orders.view(identity(), order_id, check=True)
    if view.check_error is not None:
        await flash(view.check_error.message, "error")
    return redirect(f"/orders/{view.order.id}/", 303)


@bp.post("/orders/<order_id>/pay/")
async def pay_again(order_id: str) -> ResponseReturnValue:
    await check_csrf()
    start = await services().orders.pay_again(identity(), order_id)
    return redirect(start.payment_url, 303)
