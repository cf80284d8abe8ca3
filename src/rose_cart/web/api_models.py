"""The JSON API's contract as typed models: they validate what clients send, shape what
they get, and are what the OpenAPI document is generated from (``web/contract.py``).

Every field has one JSON type. Quantities and ids are JSON integers (``"3"`` is refused:
a string is not a number); money is a decimal string (``"4.50"``: a float is not money).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from rose_cart.domain.cart import HARD_MAX_PER_LINE
from rose_cart.domain.ids import _MAX_DIGITS
from rose_cart.domain.order import AttemptStatus, OrderStatus

MAX_ID = 10**_MAX_DIGITS - 1
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{8,128}$"


def _json_integer(value: Any) -> Any:
    # JSON has numbers, not digit strings; and true is not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a whole number")
    return value


# The constraints before the validator, so that the document shows them as JSON Schema.
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_json_integer)]
#: A line's quantity: 0 only where it removes the line. A product's own maximum (often
#: lower) is the service's to check: ``quantity_too_large`` names it.
Quantity = Annotated[int, Field(ge=1, le=HARD_MAX_PER_LINE), BeforeValidator(_json_integer)]
QuantityOrZero = Annotated[int, Field(ge=0, le=HARD_MAX_PER_LINE), BeforeValidator(_json_integer)]
Money = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["4.50"])]
Amount = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,11}(\.[0-9]{1,3})?$",
        description="In major units, such as 4.50; more than zero",
        examples=["4.50"],
    ),
]
DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Slug = Annotated[str, Field(min_length=1, max_length=200)]


class Request(BaseModel):
    """Unknown fields are ignored, as before."""

    model_config = ConfigDict(extra="ignore")


class AddItem(Request):
    product_id: Id
    quantity: Quantity = 1


class SetQuantity(Request):
    """0 removes the line."""

    quantity: QuantityOrZero


class CheckoutRequest(Request):
    """``page_slug``: that page's lines; ``site``: the co-op shop's own lines (items of no
    page); neither: the whole cart, when it holds one group's lines."""

    # A page and the co-op shop at once is refused (400): the document says so.
    model_config = ConfigDict(
        json_schema_extra={
            "not": {"required": ["page_slug", "site"], "properties": {"site": {"const": True}}}
        }
    )

    page_slug: Annotated[str, Field(max_length=200)] | SkipJsonSchema[None] = None
    site: StrictBool = False


class CheckoutHeaders(Request):
    idempotency_key: (
        Annotated[
            str,
            Field(
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="The same key with the same request (page and cart) gives the "
                "same order; with another, 409 idempotency_key_reused",
            ),
        ]
        | SkipJsonSchema[None]
    ) = None


class RefundRequest(Request):
    """Without amount, all that is left is refunded."""

    amount: Amount | SkipJsonSchema[None] = None


class AdminOrdersQuery(Request):
    """An empty parameter is the same as none."""

    status: OrderStatus | SkipJsonSchema[None] = None
    page_slug: Slug | SkipJsonSchema[None] = None
    needs_attention: bool | SkipJsonSchema[None] = None


# ---------------------------------------------------------------------- responses


class Response(BaseModel):
    """What the service answers: a key that is not documented here is a bug."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable, for programs")
    message: str = Field(description="For a person")
    field: str | SkipJsonSchema[None] = Field(None, description="The request field at fault")


class Error(BaseModel):
    """An error: a stable code and a message for a person; some codes add details (the
    line maximum, what is left, each page's checkout link)."""

    error: ErrorDetail


class PageRef(Response):
    id: int
    slug: str
    title: str


class CartLine(Response):
    kind: Literal["product", "booking", "ticket"]
    title: str
    quantity: int
    unit_price: Money
    line_total: Money
    currency: str
    product_id: int | SkipJsonSchema[None] = Field(None, description="Products")
    available: bool | SkipJsonSchema[None] = Field(None, description="Products")
    entry_id: int | SkipJsonSchema[None] = Field(
        None, description="Bookings and tickets: the event"
    )
    ticket_type_id: int | SkipJsonSchema[None] = Field(
        None, description="Tickets: one line per ticket type, its quantity the number held"
    )
    start_at: DateTime | SkipJsonSchema[None] = Field(None, description="Bookings and tickets")


class CurrencyTotal(Response):
    currency: str
    total: Money


class GroupCheckout(Response):
    """The body of ``POST /api/v1/checkout`` that checks out exactly this group."""

    page_slug: str | SkipJsonSchema[None] = None
    site: bool | SkipJsonSchema[None] = None


class CartGroup(Response):
    page: PageRef | None
    count: int
    total: Money | None
    currency: str | None
    checkout_url: str
    checkout: GroupCheckout
    lines: list[CartLine]


class Cart(Response):
    """The visitor's cart, grouped by page; total and currency are null when it holds
    more than one currency (see totals)."""

    count: int
    total: Money | None
    currency: str | None
    totals: list[CurrencyTotal]
    user_id: int | None
    groups: list[CartGroup]


class CheckoutResult(Response):
    """The order, and SumUp's page where it is paid."""

    order_id: int
    status: OrderStatus
    total: Money
    currency: str
    payment_url: str


class OrderSummary(Response):
    id: int
    status: OrderStatus
    total: Money
    currency: str
    created_at: DateTime
    paid_at: DateTime | None
    page: PageRef | None
    needs_refund: bool = Field(
        description="Paid, but the payer is owed a refund (a person at the co-op acts)"
    )
    refunded: Money


class OrderItem(Response):
    product_id: int
    title: str
    quantity: int
    unit_price: Money
    line_total: Money


class OrderBooking(Response):
    entry_id: int
    title: str
    start_at: DateTime
    state: str


class OrderTicket(Response):
    ticket_id: int
    entry_id: int
    ticket_type: str
    state: str


class Payment(Response):
    id: int
    status: AttemptStatus
    amount: Money
    provider_checkout_id: str | None
    created_at: DateTime


class Refund(Response):
    id: int
    amount: Money
    status: Literal["done", "unconfirmed", "requested", "failed"]
    created_at: DateTime


class Order(OrderSummary):
    """One order: items, bookings, tickets, payments and refunds."""

    items: list[OrderItem]
    bookings: list[OrderBooking]
    tickets: list[OrderTicket]
    payments: list[Payment]
    refunds: list[Refund]


class AdminOrderSummary(OrderSummary):
    needs_attention: bool
    attention: str | None
    user_id: int | None


class AdminPayment(Payment):
    reference: str
    account: str
    merchant_code: str
    transaction_id: str | None
    valid_until: DateTime
    unreadable_since: DateTime | None


class AdminRefund(Refund):
    requested_by: str | None
    error: str | None


class OutboxEntry(Response):
    id: str
    kind: str
    type: str
    status: str
    attempts: int
    last_error: str | None
    published: DateTime
    done_at: DateTime | None


class AdminOrder(AdminOrderSummary):
    """One order with everything that happened to it (admins)."""

    items: list[OrderItem]
    bookings: list[OrderBooking]
    tickets: list[OrderTicket]
    payments: list[AdminPayment]
    refunds: list[AdminRefund]
    outbox: list[OutboxEntry]
