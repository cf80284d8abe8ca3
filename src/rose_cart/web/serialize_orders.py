"""JSON shape of an order (DESIGN §11), and the admin's fuller one."""

from __future__ import annotations

from typing import Any

from rose_cart.domain.money import quantize
from rose_cart.domain.order import Order
from rose_cart.services.admin import AdminOrderView
from rose_cart.services.orders import OrderView


def _money(value: Any, currency: str) -> str:
    return format(quantize(value, currency), "f")


def order_summary_json(order: Order) -> dict[str, Any]:
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
        "needs_refund": order.needs_refund,
        "refunded": _money(order.refunded, order.currency),
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
    data["refunds"] = [
        {
            "id": r.id,
            "amount": _money(r.amount, r.currency),
            "status": r.status,
            "created_at": r.created_at.isoformat(),
        }
        for r in view.refunds
        if r.status in {"done", "unconfirmed"}
    ]
    return data


def admin_order_summary_json(order: Order) -> dict[str, Any]:
    data = order_summary_json(order)
    data["needs_attention"] = order.needs_attention
    data["attention"] = order.attention_text
    data["user_id"] = order.user_id
    return data


def admin_order_json(admin_view: AdminOrderView) -> dict[str, Any]:
    view = admin_view.view
    data = order_json(view)
    data.update(admin_order_summary_json(view.order))
    data["payments"] = [
        {
            **payment,
            "reference": attempt.reference,
            "account": attempt.account,
            "merchant_code": attempt.merchant_code,
            "transaction_id": attempt.transaction_id,
            "valid_until": attempt.valid_until.isoformat(),
            "unreadable_since": (
                attempt.unreadable_since.isoformat() if attempt.unreadable_since else None
            ),
        }
        for payment, attempt in zip(data["payments"], view.attempts, strict=True)
    ]
    data["refunds"] = [
        {
            "id": r.id,
            "amount": _money(r.amount, r.currency),
            "status": r.status,
            "requested_by": r.requested_by,
            "error": r.error,
            "created_at": r.created_at.isoformat(),
        }
        for r in view.refunds
    ]
    data["outbox"] = [
        {
            "id": r.id,
            "kind": r.kind,
            "type": r.type,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "published": r.published.isoformat(),
            "done_at": r.done_at.isoformat() if r.done_at else None,
        }
        for r in admin_view.records
    ]
    return data
