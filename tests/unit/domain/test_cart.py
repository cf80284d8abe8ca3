from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rose_cart.domain.cart import (
    HARD_MAX_PER_LINE,
    Cart,
    CartLine,
    PageRef,
    group_by_page,
    line_maximum,
    parse_quantity,
)
from rose_cart.domain.errors import InvalidQuantity, QuantityTooLarge
from rose_cart.domain.money import Money

BAKERY = PageRef(1, "bakery", "Bakery")
GARDEN = PageRef(2, "garden", "Garden")


def line(
    price: str, qty: int, page: PageRef | None = None, currency: str = "GBP", pid: int = 1
) -> CartLine:
    return CartLine(
        "product", f"P{pid}", qty, Money(Decimal(price), currency), page, product_id=pid
    )


def test_totals_by_currency_and_count() -> None:
    cart = Cart((line("4.50", 2, BAKERY), line("1.25", 3, GARDEN, pid=2)))
    assert cart.count == 5
    assert cart.total == Money(Decimal("12.75"), "GBP")


def test_mixed_currency_has_no_single_total() -> None:
    cart = Cart((line("4.50", 1), line("3.00", 1, currency="EUR", pid=2)))
    assert cart.total is None
    assert set(cart.totals) == {"EUR", "GBP"}


def test_grouping_by_page_puts_site_items_last() -> None:
    groups = group_by_page(
        [
            line("1", 1),
            line("2", 1, GARDEN, pid=2),
            line("3", 2, BAKERY, pid=3),
            line("4", 1, GARDEN, pid=4),
        ]
    )
    assert [g.page.slug if g.page else None for g in groups] == ["bakery", "garden", None]
    assert groups[1].count == 2
    assert groups[1].total == Money(Decimal("6"), "GBP")


@pytest.mark.parametrize("raw,expected", [("3", 3), (" 2 ", 2), (5, 5), ("+4", 4)])
def test_parse_quantity_accepts_whole_numbers(raw: object, expected: int) -> None:
    assert parse_quantity(raw, allow_zero=False) == expected


@pytest.mark.parametrize(
    "raw", ["0", 0, "-1", -3, "1.5", 2.5, "abc", "", None, True, [1], "\uff13"]
)
def test_parse_quantity_refuses_bad_input(raw: object) -> None:
    with pytest.raises(InvalidQuantity):
        parse_quantity(raw, allow_zero=False)


def test_zero_is_allowed_when_setting() -> None:
    assert parse_quantity("0", allow_zero=True) == 0


def test_huge_quantity() -> None:
    with pytest.raises(QuantityTooLarge):
        parse_quantity(10**12, allow_zero=False)


def test_line_maximum_never_above_hard_cap() -> None:
    assert line_maximum(None) == HARD_MAX_PER_LINE
    assert line_maximum(3) == 3
    assert line_maximum(10_000) == HARD_MAX_PER_LINE


prices = st.decimals(min_value=0, max_value=1000, places=2)


@given(
    st.lists(
        st.tuples(prices, st.integers(1, 99), st.sampled_from([None, BAKERY, GARDEN])),
        min_size=1,
        max_size=20,
    )
)
def test_group_totals_add_up_to_cart_total(rows: list[tuple[Decimal, int, PageRef | None]]) -> None:
    lines = tuple(line(str(p), q, page, pid=i) for i, (p, q, page) in enumerate(rows))
    cart = Cart(lines)
    expected = sum((p * q for p, q, _ in rows), Decimal(0))
    assert cart.total is not None and cart.total.amount == expected
    groups = cart.groups()
    assert sum(g.total.amount for g in groups if g.total) == expected
    assert sum(g.count for g in groups) == cart.count
    assert sum(len(g.lines) for g in groups) == len(lines)
