"""JSON shapes of the public API (DESIGN §11). Money is a decimal string."""

from __future__ import annotations

from typing import Any

from rose_cart.domain.cart import Cart, CartLine
from rose_cart.services.checkout import checkout_body, checkout_path


def line_json(line: CartLine) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": line.kind,
        "title": line.title,
        "quantity": line.quantity,
        "unit_price": line.unit_price.as_str(),
        "line_total": line.line_total.as_str(),
        "currency": line.currency,
    }
    if line.product_id is not None:
        data["product_id"] = line.product_id
        data["available"] = line.available
    if line.entry_id is not None:
        data["entry_id"] = line.entry_id
    if line.ticket_type_id is not None:
        data["ticket_type_id"] = line.ticket_type_id
    if line.start_at is not None:
        data["start_at"] = line.start_at.isoformat()
    return data


def _total(totals: dict[str, Any]) -> tuple[str | None, str | None]:
    if not totals:
        return "0.00", None
    if len(totals) == 1:
        currency, money = next(iter(totals.items()))
        return money.as_str(), currency
    return None, None


def cart_json(cart: Cart, user_id: int | None) -> dict[str, Any]:
    total, currency = _total(cart.totals)
    groups = []
    for group in cart.groups():
        g_total, g_currency = _total(group.totals)
        groups.append(
            {
                "page": (
                    {"id": group.page.id, "slug": group.page.slug, "title": group.page.title}
                    if group.page
                    else None
                ),
                "count": group.count,
                "total": g_total,
                "currency": g_currency,
                "checkout_url": checkout_path(group.page),
                "checkout": checkout_body(group.page),
                "lines": [line_json(line) for line in group.lines],
            }
        )
    return {
        "count": cart.count,
        "total": total,
        "currency": currency,
        "totals": [{"currency": c, "total": m.as_str()} for c, m in cart.totals.items()],
        "user_id": user_id,
        "groups": groups,
    }
