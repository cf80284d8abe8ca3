"""JSON shape of an order (DESIGN §11)."""

from __future__ import annotations

from typing import Any

from rose_cart.domain.money import quantize
from rose_cart.ports import StoredOrder
from rose_cart.services.orders import OrderView


def _money(value: Any, currency: str) -> str:
    return format(quantize(value, currency), "f")


def order_summary_json(order: StoredOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": order.status.value,
        "total": _money(order.total, order.currency),
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "page": (
            {"id": order.page_id, "slug": order.page_slug, "title": order.page_title}
            if order.page_id is not None
            else None
        ),
    }


def order_json(view: OrderView) -> dict[str, Any]:
    order = view.order
    data = order_summary_json(order)
    data["items"] = [
        {
            "product_id": i.product_id,
            "title": i.title,
            "quantity": i.quantity,
            "unit_price": _money(i.unit_price, order.currency),
            "line_total": _money(i.line_total, order.currency),
        }
        for i in view.items
    ]
    data["bookings"] = [
        {"entry_id": e.id, "title": e.name, "start_at": e.start_at.isoformat(), "state": e.state}
        for e in view.bookings
    ]
    data["tickets"] = [
        {"ticket_id": t.id, "entry_id": t.entry_id, "ticket_type": t.ticket_type, "state": t.state}
        for t in view.tickets
    ]
    data["payments"] = [
        {
            "id": a.id,
            "status": a.status.value,
            "amount": _money(a.amount, a.currency),
            "provider_checkout_id": a.provider_checkout_id,
            "created_at": a.created_at.isoformat(),
        }
        for a in view.attempts
    ]
    return data
