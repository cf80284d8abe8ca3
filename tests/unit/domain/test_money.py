from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rose_cart.domain.money import Money, MoneyError, minor_units, quantize


def test_rounds_half_up_to_pennies() -> None:
    assert quantize(Decimal("4.505"), "GBP") == Decimal("4.51")
    assert quantize(Decimal("4.504"), "GBP") == Decimal("4.50")
    assert str(Money(Decimal("4.5"), "gbp").as_str()) == "4.50"


def test_currencies_without_or_with_three_decimals() -> None:
    assert minor_units("JPY") == 0
    assert Money(Decimal("199.6"), "JPY").as_str() == "200"
    assert Money(Decimal("1.2345"), "KWD").as_str() == "1.235"


def test_cannot_add_different_currencies() -> None:
    with pytest.raises(MoneyError):
        Money(Decimal(1), "GBP") + Money(Decimal(1), "EUR")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "abc"])
def test_not_an_amount(bad: str) -> None:
    with pytest.raises(MoneyError):
        quantize(bad, "GBP")


def test_minor_units_and_display() -> None:
    assert Money(Decimal("12.34"), "GBP").to_minor() == 1234
    assert Money(Decimal("12.3"), "GBP").display() == "£12.30"
    assert Money(Decimal("5"), "CHF").display() == "5.00 CHF"


@given(st.lists(st.decimals(min_value=0, max_value=10_000, places=2), max_size=30))
def test_sum_of_pennies_is_exact(amounts: list[Decimal]) -> None:
    total = Money.zero("GBP")
    for amount in amounts:
        total = total + Money(amount, "GBP")
    assert total.amount == sum(amounts, Decimal(0))
    assert total.to_minor() == sum(int(a * 100) for a in amounts)
