"""Bookings and tickets beside products: where they show, what they add up to."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rose_cart.domain.cart import Cart, CartLine, PageRef, count_phrase
from rose_cart.domain.money import Money

EVENTS = PageRef(3, "events", "Events")


def _line(kind: str, price: str, qty: int = 1, page: PageRef | None = EVENTS) -> CartLine:
    return CartLine(
        kind,  # type: ignore[arg-type]
        f"{kind} {price}",
        qty,
        Money(Decimal(price), "GBP"),
        page,
        product_id=1 if kind == "product" else None,
        entry_id=None if kind == "product" else 50,
        ticket_type_id=3 if kind == "ticket" else None,
        start_at=datetime(2026, 12, 5, 18, tzinfo=UTC) if kind == "booking" else None,
    )


def test_a_group_shows_products_then_bookings_then_tickets_with_their_subtotals() -> None:
    cart = Cart(
        (
            _line("ticket", "12.00", 2),
            _line("booking", "20.00"),
            _line("product", "4.50", 3),
            _line("ticket", "5.00", 1),
        )
    )
    [group] = cart.groups()
    assert [line.kind for line in group.lines] == ["product", "booking", "ticket", "ticket"]
    assert group.kinds == ["product", "booking", "ticket"]
    assert group.subtotal("product") == Money(Decimal("13.50"), "GBP")
    assert group.subtotal("booking") == Money(Decimal("20.00"), "GBP")
    assert group.subtotal("ticket") == Money(Decimal("29.00"), "GBP")
    assert group.total == Money(Decimal("62.50"), "GBP")
    assert group.count == 7 and cart.count == 7
    assert group.counts_text == "3 products · 1 booking · 3 tickets"


def test_counts_text_names_only_what_the_group_holds() -> None:
    [group] = Cart((_line("booking", "20.00"), _line("booking", "5.00"))).groups()
    assert group.counts_text == "2 bookings"
    assert group.subtotal("ticket") is None
    assert count_phrase(1, "ticket") == "1 ticket" and count_phrase(0, "product") == "0 products"


def test_bookings_of_a_calendar_with_no_page_join_the_site_level_group() -> None:
    cart = Cart((_line("product", "4.50"), _line("booking", "20.00", page=None)))
    assert [(g.page.slug if g.page else None, g.counts_text) for g in cart.groups()] == [
        ("events", "1 product"),
        (None, "1 booking"),
    ]
