"""One error tree. Each error has a stable code (for clients) and a message for a person.

The web layer maps ``status`` to HTTP in one place; services raise these and nothing else
for expected failures.
"""

from __future__ import annotations

from typing import Any


class CartError(Exception):
    code = "error"
    status = 400
    message = "Something went wrong."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details


class BadInput(CartError):
    code = "bad_input"
    status = 400
    message = "The request was not understood."


class InvalidQuantity(BadInput):
    code = "invalid_quantity"
    message = "Quantity must be a whole number of at least 1."


class InvalidAmount(BadInput):
    code = "invalid_amount"
    message = "Give an amount such as 4.50, greater than zero."


class InvalidRequest(BadInput):
    """A field missing, or of the wrong type or shape; ``field`` names it."""

    code = "invalid_request"
    message = "A field of the request is missing or not of the right kind."


class InvalidIdempotencyKey(BadInput):
    code = "invalid_idempotency_key"
    message = (
        "An idempotency key is 8 to 128 letters, digits and the characters _ . : - "
        "(or leave it out)."
    )


class CsrfFailed(CartError):
    code = "csrf_failed"
    status = 400
    message = "The form had expired. Please try again."


class LoginRequired(CartError):
    code = "login_required"
    status = 401
    message = "Please log in first."


class NotFound(CartError):
    code = "not_found"
    status = 404
    message = "Not found."


class ProductNotFound(NotFound):
    code = "product_not_found"
    message = "That product does not exist."


class PageNotFound(NotFound):
    code = "page_not_found"
    message = "That page does not exist."


class EntryNotFound(NotFound):
    code = "entry_not_found"
    message = "That booking does not exist."


class TicketTypeNotFound(NotFound):
    code = "ticket_type_not_found"
    message = "That ticket type does not exist."


class OrderNotFound(NotFound):
    code = "order_not_found"
    message = "That order does not exist."


class Conflict(CartError):
    code = "conflict"
    status = 409
    message = "That cannot be done right now."


class ProductUnavailable(Conflict):
    code = "product_unavailable"
    message = "That product is not available at the moment."


class QuantityTooLarge(Conflict):
    """More than a line may hold (the product's maximum, or 99): a limit of what is sold,
    as sold_out is, not a malformed request."""

    code = "quantity_too_large"
    message = "That is more than can be ordered at once."


class TooManyLines(Conflict):
    code = "too_many_lines"
    message = "Your cart is full. Remove something before adding more."


class CartEmpty(Conflict):
    code = "cart_empty"
    message = "Your cart is empty."


class MixedCurrency(Conflict):
    code = "mixed_currency"
    message = "Items priced in different currencies must be checked out separately."


class MultiplePages(Conflict):
    code = "multiple_pages"
    message = "Your cart holds items from several sellers. Check out each seller separately."


class SoldOut(Conflict):
    code = "sold_out"
    message = "Sorry, that has sold out."


class CartChanged(Conflict):
    """What a checkout priced is no longer in the cart when the order comes to claim it."""

    code = "cart_changed"
    message = (
        "Your cart changed while you were checking out, so nothing was ordered. Please "
        "look over your cart and check out again."
    )


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    message = (
        "This idempotency key was used for another checkout: another page, or a cart that "
        "has changed since. Use a new key for a new checkout."
    )


class OrderNotPayable(Conflict):
    code = "order_not_payable"
    message = "This order can no longer be paid."


class CheckoutsStillOpen(Conflict):
    """An order may not expire or be cancelled while a checkout could still take money."""

    code = "checkouts_still_open"
    message = "A payment link of this order is still open."


class AttemptStillOpen(Conflict):
    """One live attempt at a time: a new one waits until the last is closed."""

    code = "attempt_still_open"
    message = "This order already has a payment link open."


class RefundExceedsPayment(Conflict):
    code = "refund_exceeds_payment"
    message = "That is more than was paid and not yet refunded."


class NotRefundable(Conflict):
    code = "order_not_refundable"
    message = "Only a paid order can be refunded."


class Unavailable(CartError):
    code = "unavailable"
    status = 503
    message = "A service we depend on is not answering. Please try again in a minute."


class SiblingUnavailable(Unavailable):
    code = "sibling_unavailable"
    message = "The shop catalogue is not answering. Please try again in a minute."


class PaymentProviderUnavailable(Unavailable):
    code = "payment_provider_unavailable"
    status = 502
    message = (
        "The payment service is not answering. Your cart is safe; please try again in a minute."
    )


class PaymentProviderRejected(CartError):
    code = "payment_provider_rejected"
    status = 502
    message = (
        "The payment service refused this shop's payment settings. Your cart is safe; "
        "please let the seller know."
    )
