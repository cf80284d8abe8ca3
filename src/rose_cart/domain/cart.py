"""Cart lines, totals and grouping by page."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from rose_cart.domain.errors import InvalidQuantity, QuantityTooLarge
from rose_cart.domain.money import Money, sum_money

LineKind = Literal["product", "booking", "ticket"]
#: The order kinds of line are shown in, within a page's group.
KINDS: tuple[LineKind, ...] = ("product", "booking", "ticket")

#: A cart line can never hold more than this, whatever the product allows.
HARD_MAX_PER_LINE = 99
#: A cart holds at most this many distinct lines.
MAX_LINES = 100


@dataclass(frozen=True, slots=True)
class PageRef:
    """The co-op page (seller) a line belongs to."""

    id: int
    slug: str
    title: str


@dataclass(frozen=True, slots=True)
class CartLine:
    kind: LineKind
    title: str
    quantity: int
    unit_price: Money
    page: PageRef | None = None
    product_id: int | None = None
    entry_id: int | None = None
    ticket_type_id: int | None = None
    start_at: datetime | None = None
    slug: str | None = None
    image: str | None = None
    available: bool = True
    #: The stored cart line this came from (products only), so an order can name it.
    line_id: int | None = None
    # Worked out once: totals, subtotals, the page and the JSON all ask for it.
    _line_total: Money = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_line_total", self.unit_price.times(self.quantity))

    @property
    def currency(self) -> str:
        return self.unit_price.currency

    @property
    def line_total(self) -> Money:
        return self._line_total


@dataclass(frozen=True, slots=True)
class PageGroup:
    """The lines of one page (or of no page: site-level items), with its totals."""

    page: PageRef | None
    lines: tuple[CartLine, ...]
    # Worked out once: a cart page asks for a group's totals, kinds and lines of each kind
    # several times (per kind, per line).
    _totals: dict[str, Money] = field(init=False, repr=False, compare=False, hash=False)
    _by_kind: dict[LineKind, tuple[CartLine, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_totals", totals_by_currency(self.lines))
        by_kind: dict[LineKind, list[CartLine]] = {}
        for line in self.lines:
            by_kind.setdefault(line.kind, []).append(line)
        # In the order kinds are shown, whatever order the lines came in.
        ordered = {kind: tuple(by_kind[kind]) for kind in KINDS if kind in by_kind}
        object.__setattr__(self, "_by_kind", ordered)

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def totals(self) -> dict[str, Money]:
        return self._totals

    @property
    def currencies(self) -> list[str]:
        return sorted(self.totals)

    @property
    def total(self) -> Money | None:
        """The total when the group has one currency (the usual case), else None."""
        totals = self.totals
        return next(iter(totals.values())) if len(totals) == 1 else None

    def lines_of(self, kind: LineKind) -> tuple[CartLine, ...]:
        return self._by_kind.get(kind, ())

    def count_of(self, kind: LineKind) -> int:
        return sum(line.quantity for line in self.lines_of(kind))

    def subtotal(self, kind: LineKind) -> Money | None:
        """The lines of one kind (products, bookings or tickets) together, when in one
        currency."""
        totals = totals_by_currency(self.lines_of(kind))
        return next(iter(totals.values())) if len(totals) == 1 else None

    @property
    def kinds(self) -> list[LineKind]:
        """The kinds of line the group holds, in the order they are shown."""
        return list(self._by_kind)

    @property
    def counts_text(self) -> str:
        """What the group holds, by kind: "3 products · 1 booking · 2 tickets"."""
        return " · ".join(count_phrase(self.count_of(kind), kind) for kind in self._by_kind)


@dataclass(frozen=True, slots=True)
class Cart:
    lines: tuple[CartLine, ...] = field(default_factory=tuple)
    # Totals are worked out once (a page, its badge and its groups all ask for them), the
    # groups on first use.
    _totals: dict[str, Money] = field(init=False, repr=False, compare=False, hash=False)
    _groups: list[PageGroup] | None = field(
        init=False, default=None, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_totals", totals_by_currency(self.lines))

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def totals(self) -> dict[str, Money]:
        return self._totals

    @property
    def total(self) -> Money | None:
        totals = self.totals
        return next(iter(totals.values())) if len(totals) == 1 else None

    def count_of(self, kind: LineKind) -> int:
        return sum(line.quantity for line in self.lines if line.kind == kind)

    def total_of(self, kind: LineKind) -> dict[str, Money]:
        return totals_by_currency(line for line in self.lines if line.kind == kind)

    def groups(self) -> list[PageGroup]:
        if self._groups is None:
            object.__setattr__(self, "_groups", group_by_page(self.lines))
        assert self._groups is not None
        return list(self._groups)

    def group_for(self, page_slug: str) -> PageGroup | None:
        for group in self.groups():
            if group.page is not None and group.page.slug == page_slug:
                return group
        return None


def totals_by_currency(lines: Iterable[CartLine]) -> dict[str, Money]:
    by_currency: dict[str, list[Money]] = {}
    for line in lines:
        by_currency.setdefault(line.currency, []).append(line.line_total)
    return {cur: sum_money(values, cur) for cur, values in sorted(by_currency.items())}


def count_phrase(count: int, kind: LineKind) -> str:
    """The count with its noun: "1 booking", "2 tickets"."""
    return f"{count} {kind}{'' if count == 1 else 's'}"


def group_by_page(lines: Iterable[CartLine]) -> list[PageGroup]:
    """Group lines by page, pages in title order, site-level lines (no page) last. Within a
    group, products come first, then bookings, then tickets (each kind in its given order).
    """
    buckets: dict[int | None, list[CartLine]] = {}
    pages: dict[int, PageRef] = {}
    for line in lines:
        key = line.page.id if line.page else None
        if line.page:
            pages[line.page.id] = line.page
        buckets.setdefault(key, []).append(line)
    ordered = sorted((k for k in buckets if k is not None), key=lambda k: pages[k].title.lower())
    groups = [PageGroup(pages[k], _by_kind(buckets[k])) for k in ordered]
    if None in buckets:
        groups.append(PageGroup(None, _by_kind(buckets[None])))
    return groups


def _by_kind(lines: list[CartLine]) -> tuple[CartLine, ...]:
    return tuple(sorted(lines, key=lambda line: KINDS.index(line.kind)))


def parse_quantity(raw: object, *, allow_zero: bool) -> int:
    """Turn user input into a quantity, or raise a stable-coded error.

    Accepts ints and strings of digits; refuses booleans, floats with a fraction,
    negatives, and zero unless ``allow_zero`` (setting 0 removes a line).
    """
    if isinstance(raw, bool):
        raise InvalidQuantity()
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif (
        isinstance(raw, str)
        and raw.strip().isascii()
        and raw.strip().lstrip("+").isdigit()
        and len(raw.strip()) <= 9
    ):
        value = int(raw.strip())
    elif isinstance(raw, str) and raw.strip().startswith("-") and raw.strip()[1:].isdigit():
        raise InvalidQuantity()
    elif isinstance(raw, Decimal) and raw == raw.to_integral_value():
        value = int(raw)
    else:
        raise InvalidQuantity()
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidQuantity()
    if value > 10**9:
        raise QuantityTooLarge()
    return value


def line_maximum(max_per_order: int | None) -> int:
    """The most one line may hold: the product's own limit, never above the hard cap."""
    if max_per_order is None or max_per_order <= 0:
        return HARD_MAX_PER_LINE
    return min(max_per_order, HARD_MAX_PER_LINE)
