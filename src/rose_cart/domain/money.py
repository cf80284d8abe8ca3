"""Decimal money, rounded to each currency's minor unit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 exponents that differ from the usual two decimals.
_MINOR_UNITS: dict[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}

_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


class MoneyError(ValueError):
    """Raised for amounts that are not money (NaN, infinity, wrong currency code)."""


def minor_units(currency: str) -> int:
    """How many decimal places the currency's smallest coin has."""
    return _MINOR_UNITS.get(currency.upper(), 2)


#: Currency code -> the quantum of its minor unit (Decimal("0.01")), worked out once.
_QUANTA: dict[str, Decimal] = {}


#: Zero in each currency met so far: Money is immutable, so one will do for every sum.
_ZEROS: dict[str, Money] = {}


def _quantum(currency: str) -> Decimal:
    found = _QUANTA.get(currency)
    if found is None:
        found = Decimal(1).scaleb(-minor_units(currency))
        if len(_QUANTA) < 1000:  # codes come from data: keep the table bounded
            _QUANTA[currency] = found
    return found


def normalise_currency(currency: str) -> str:
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"not a currency code: {currency!r}")
    return code


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (pennies, cents, yen)."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation as exc:
        raise MoneyError(f"not an amount: {amount!r}") from exc
    if not value.is_finite():
        raise MoneyError(f"not an amount: {amount!r}")
    return value.quantize(_quantum(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency, always held at the currency's minor unit."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        currency = normalise_currency(self.currency)
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "amount", quantize(self.amount, currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        zero = _ZEROS.get(currency)
        if zero is None:
            zero = cls(Decimal(0), currency)
            if len(_ZEROS) < 1000:  # codes come from stored data; a bad one raises above
                _ZEROS[currency] = zero
        return zero

    @classmethod
    def _exact(cls, amount: Decimal, currency: str) -> Money:
        """Money from an amount already at ``currency``'s minor unit and a normalised code
        (sums, differences and whole multiples of Money are): nothing to check or round."""
        money = object.__new__(cls)
        object.__setattr__(money, "amount", amount)
        object.__setattr__(money, "currency", currency)
        return money

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money._exact(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money._exact(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        if type(quantity) is int:
            return Money._exact(self.amount * quantity, self.currency)
        return Money(self.amount * quantity, self.currency)

    def to_minor(self) -> int:
        """The amount in the smallest coin, e.g. pence."""
        return int(self.amount.scaleb(minor_units(self.currency)))

    def as_str(self) -> str:
        """The decimal string used in JSON ("4.50")."""
        return format(self.amount, "f")

    def display(self) -> str:
        symbol = _SYMBOLS.get(self.currency)
        return f"{symbol}{self.as_str()}" if symbol else f"{self.as_str()} {self.currency}"

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")


def sum_money(values: list[Money], currency: str) -> Money:
    zero = Money.zero(currency)
    amount = zero.amount
    for value in values:
        zero._same_currency(value)
        amount += value.amount
    # Each amount is already at the minor unit, so their plain sum is exact: one Money
    # instead of one per addition (a cart's totals add up every line, twice).
    return Money._exact(amount, zero.currency)
