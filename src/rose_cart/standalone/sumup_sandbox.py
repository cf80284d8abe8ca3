"""A SumUp look-alike: the Checkouts and Refunds API plus a hosted payment page.

Why it exists: standalone runs, demos and end-to-end tests need to take a payment without
a SumUp account or the network, and the cart's SumUp adapter should be exercised through
the real SDK over real HTTP. So this answers on SumUp's own paths with SumUp's status
codes and JSON bodies (checked against SumUp's OpenAPI document by the tests), and adds
the parts of SumUp's behaviour the cart must cope with: a checkout that stays payable until
its ``valid_until`` (and for ever without one), closing a checkout, FAILED being a state the
payer can still pay from, the sandbox amounts that always fail, unsigned webhooks that may
arrive twice at once, and injectable faults (5xx, slowness).

It keeps everything in memory and trusts its caller: it is never mounted in production.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import string
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from quart import Blueprint, Response, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue

from rose_cart.domain.money import Money, minor_units

log = logging.getLogger(__name__)

# SumUp's sandbox declines these whatever the payer does; tests use them to reach FAILED.
ALWAYS_FAILING_AMOUNTS = frozenset(Decimal(value) for value in ("11.00", "42.01", "42.76", "42.91"))

# The Currency enum of SumUp's OpenAPI document.
CURRENCIES = frozenset(
    [
        "BGN",
        "BRL",
        "CHF",
        "CLP",
        "COP",
        "CZK",
        "DKK",
        "EUR",
        "GBP",
        "HRK",
        "HUF",
        "NOK",
        "PLN",
        "RON",
        "SEK",
        "USD",
    ]
)

# SumUp's current docs cap references at 64 characters (an older schema says 90); the
# stricter limit catches a cart that builds references too long for the real service.
MAX_REFERENCE_LENGTH = 64

WEBHOOK_EVENT = "CHECKOUT_STATUS_CHANGED"

_View = Callable[..., Awaitable[ResponseReturnValue]]

_CHECKOUTS_MEDIA = "application/json"
_REFUNDS_MEDIA = "application/problem+json"
_PROBLEM_BASE = "https://developer.sumup.com/problem/"


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def post_webhook(url: str, payload: dict[str, Any]) -> None:
    """Deliver one webhook like SumUp does: a JSON POST whose failure is nobody's problem.

    SumUp retries failed deliveries much later, so a failed delivery must never fail or
    slow down the payment that triggered it.
    """
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            await client.post(url, json=payload)
    except Exception as exc:  # any failure at all is swallowed, by contract
        log.info("sandbox webhook to %s failed: %s", url, type(exc).__name__)


@dataclass
class SandboxTransaction:
    """One payment attempt on a checkout, as SumUp lists it under ``transactions``."""

    id: str
    transaction_code: str
    status: str  # SUCCESSFUL, FAILED or REFUNDED
    amount: Decimal
    currency: str
    merchant_code: str
    timestamp: datetime
    refunded: Decimal = Decimal(0)

    @property
    def refundable(self) -> Decimal:
        if self.status not in ("SUCCESSFUL", "REFUNDED"):
            return Decimal(0)
        return self.amount - self.refunded


@dataclass
class SandboxCheckout:
    id: str
    checkout_reference: str
    amount: Decimal
    currency: str
    merchant_code: str
    description: str | None
    return_url: str | None
    redirect_url: str | None
    hosted_checkout_url: str | None
    created_at: datetime
    valid_until: datetime | None = None
    status: str = "PENDING"  # as stored; ``status_at`` adds expiry
    transactions: list[SandboxTransaction] = field(default_factory=list)

    def status_at(self, now: datetime) -> str:
        """The status SumUp would report at ``now``.

        An unpaid checkout ends at its ``valid_until``. Without one it never expires: only
        the payer's page session is limited on SumUp, never the checkout, so a cart that
        forgets ``valid_until`` or forgets to close its checkouts must see that here too.
        """
        if self.status in ("PAID", "EXPIRED"):
            return self.status
        if self.valid_until is not None and now >= self.valid_until:
            return "EXPIRED"
        return self.status

    def payable_at(self, now: datetime) -> bool:
        # FAILED is not final: the payer may try again on the hosted page.
        return self.status_at(now) in ("PENDING", "FAILED")

    def paid_transaction(self) -> SandboxTransaction | None:
        return next((t for t in self.transactions if t.status in ("SUCCESSFUL", "REFUNDED")), None)


@dataclass
class SandboxState:
    """Everything the sandbox knows, shared by its endpoints; tests poke it directly.

    ``accounts`` maps API keys to the merchant code each may use, or to a set of them for a
    key that acts for several merchant accounts (as a SumUp OAuth token of a member of
    several can); references are unique per merchant. ``fault`` breaks the API
    (not the hosted page) until cleared: ``"500"`` answers 500; ``"timeout"`` sleeps
    ``fault_delay`` seconds before handling the call (a client that gives up first cancels
    it, so nothing happens); ``"late"`` handles the call, then sleeps before answering (the
    work is done even if the client gave up: the case that makes retries meet a 409).
    ``webhook_copies`` concurrent webhooks are sent per outcome, because SumUp has been
    seen to call twice at once.
    """

    checkouts: dict[str, SandboxCheckout] = field(default_factory=dict)
    accounts: dict[str, str | frozenset[str]] = field(
        default_factory=lambda: {"sup_sk_sandbox": "MSANDBOX"}
    )
    merchant_names: dict[str, str] = field(
        default_factory=lambda: {"MSANDBOX": "Rose Ash Sandbox Shop"}
    )
    webhook_copies: int = 1
    fault: str | None = None
    fault_delay: float = 5.0
    deliver_webhook: Callable[[str, dict[str, Any]], Awaitable[None]] = post_webhook
    now: Callable[[], datetime] = _utc_now

    def merchants_for(self, api_key: str) -> frozenset[str]:
        merchants = self.accounts.get(api_key, frozenset())
        return frozenset([merchants]) if isinstance(merchants, str) else merchants

    def find_transaction(
        self, merchant_code: str, transaction_id: str
    ) -> tuple[SandboxCheckout, SandboxTransaction] | None:
        for checkout in self.checkouts.values():
            if checkout.merchant_code != merchant_code:
                continue
            for txn in checkout.transactions:
                if txn.id == transaction_id:
                    return checkout, txn
        return None


# --------------------------------------------------------------------------- JSON shapes


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _transaction_json(txn: SandboxTransaction) -> dict[str, Any]:
    return {
        "id": txn.id,
        "transaction_code": txn.transaction_code,
        "amount": float(txn.amount),
        "currency": txn.currency,
        "timestamp": _iso_millis(txn.timestamp),
        "status": txn.status,
        "payment_type": "ECOM",
        "installments_count": 1,
        "merchant_code": txn.merchant_code,
        "entry_mode": "CUSTOMER_ENTRY",
    }


def _checkout_json(state: SandboxState, checkout: SandboxCheckout) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": checkout.id,
        "checkout_reference": checkout.checkout_reference,
        "amount": float(checkout.amount),
        "currency": checkout.currency,
        "merchant_code": checkout.merchant_code,
        "purpose": "CHECKOUT",
        "status": checkout.status_at(state.now()),
        "date": _iso(checkout.created_at),
        "valid_until": _iso(checkout.valid_until) if checkout.valid_until else None,
        "transactions": [_transaction_json(txn) for txn in checkout.transactions],
    }
    optional = {
        "description": checkout.description,
        "return_url": checkout.return_url,
        "redirect_url": checkout.redirect_url,
        "hosted_checkout_url": checkout.hosted_checkout_url,
        "merchant_name": state.merchant_names.get(checkout.merchant_code),
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    paid = checkout.paid_transaction()
    if paid is not None:
        body["transaction_code"] = paid.transaction_code
        body["transaction_id"] = paid.id
    return body


def _json(body: object, status: int, media_type: str = _CHECKOUTS_MEDIA) -> Response:
    return Response(json.dumps(body), status=status, content_type=media_type)


def _error(status: int, error_code: str, message: str, **extra: str) -> Response:
    return _json({"error_code": error_code, "message": message, **extra}, status)


def _problem(status: int, title: str, detail: str, media_type: str, **extra: Any) -> Response:
    slug = title.lower().replace(" ", "-")
    body = {"type": _PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    body["trace_id"] = secrets.token_hex(16)
    return _json({**body, **extra}, status, media_type)


def _unauthorized(media_type: str) -> Response:
    # The API gateway's answer, the same for every operation.
    return _problem(401, "Unauthorized", "Unauthorized.", media_type)


def _invalid(param: str, code: str = "INVALID") -> Response:
    message = "Validation error"
    return _json({"message": message, "error_code": code, "param": param}, 400)


def _transaction_code() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "T" + "".join(secrets.choice(alphabet) for _ in range(9))


def _parse_amount(value: object, currency: str) -> Decimal | None:
    """A positive amount with no more decimals than the currency has, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0:
        return None
    if amount != amount.quantize(Decimal(1).scaleb(-minor_units(currency))):
        return None
    return amount


def _parse_moment(value: object) -> datetime:
    """An RFC 3339 timestamp, as SumUp's ``date-time`` fields are.

    One without a UTC offset is refused rather than guessed: its meaning depends on a
    clock the two sides may not share, which is how a checkout ends hours off.
    """
    if not isinstance(value, str) or "T" not in value:
        raise ValueError("not a timestamp")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a timestamp without a UTC offset")
    return moment


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _display(amount: Decimal, currency: str) -> str:
    return Money(amount, currency).display()


# --------------------------------------------------------------------------- blueprint


def sandbox_blueprint(state: SandboxState) -> Blueprint:
    """The sandbox as a Blueprint named ``sumup_sandbox``; mount it at ``/sandbox/sumup``.

    Point the SumUp SDK's ``base_url`` at the mount point. Checkouts created through it
    carry a ``hosted_checkout_url`` on this same host.
    """
    bp = Blueprint("sumup_sandbox", __name__, template_folder="templates")

    def merchants_for_key() -> frozenset[str]:
        """The merchants the request's API key acts for; none when it is not a known key."""
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return frozenset()
        return state.merchants_for(key.strip())

    def api_call(media_type: str) -> Callable[[_View], _View]:
        """Wrap an API view with the injected faults (the hosted page never gets them)."""

        def decorate(view: _View) -> _View:
            @functools.wraps(view)
            async def faulty(*args: Any, **kwargs: Any) -> ResponseReturnValue:
                fault = state.fault
                if fault == "500":
                    return _problem(
                        500, "Internal Server Error", "Sandbox fault injected.", media_type
                    )
                if fault == "timeout":
                    await asyncio.sleep(state.fault_delay)
                response = await view(*args, **kwargs)
                if fault == "late":
                    await asyncio.sleep(state.fault_delay)
                return response

            return faulty

        return decorate

    def visible(checkout_id: str, merchants: frozenset[str]) -> SandboxCheckout | None:
        checkout = state.checkouts.get(checkout_id)
        # Another merchant's checkout does not exist as far as this key is concerned.
        if checkout is None or checkout.merchant_code not in merchants:
            return None
        return checkout

    @bp.post("/v0.1/checkouts")
    @api_call(_CHECKOUTS_MEDIA)
    async def create_checkout() -> ResponseReturnValue:
        key_merchants = merchants_for_key()
        if not key_merchants:
            return _unauthorized(_CHECKOUTS_MEDIA)
        body = await request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return _invalid("body")
        for name in ("checkout_reference", "amount", "currency", "merchant_code"):
            if body.get(name) in (None, ""):
                return _invalid(name, "MISSING")

        reference = body["checkout_reference"]
        if not isinstance(reference, str) or len(reference) > MAX_REFERENCE_LENGTH:
            return _invalid("checkout_reference")
        currency = body["currency"]
        if not isinstance(currency, str) or currency not in CURRENCIES:
            return _invalid("currency")
        amount = _parse_amount(body["amount"], currency)
        if amount is None:
            return _invalid("amount")
        merchant_code = body["merchant_code"]
        if not isinstance(merchant_code, str):
            return _invalid("merchant_code")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            return _invalid("description")
        return_url = body.get("return_url")
        if return_url is not None and not _is_url(return_url):
            return _invalid("return_url")
        redirect_url = body.get("redirect_url")
        if redirect_url is not None and not _is_url(redirect_url):
            return _invalid("redirect_url")
        hosted = body.get("hosted_checkout") or {}
        if not isinstance(hosted, dict) or not isinstance(hosted.get("enabled", False), bool):
            return _invalid("hosted_checkout")
        try:
            valid_until = _parse_moment(body["valid_until"]) if body.get("valid_until") else None
        except ValueError:
            return _invalid("valid_until")

        if merchant_code not in key_merchants:
            return _json(
                {
                    "error_message": "checkout_payments_not_allowed",
                    "error_code": "FORBIDDEN",
                    "status_code": "403",
                },
                403,
            )
        if any(
            c.merchant_code == merchant_code and c.checkout_reference == reference
            for c in state.checkouts.values()
        ):
            return _error(
                409,
                "DUPLICATED_CHECKOUT",
                "Checkout with this checkout reference and pay to email already exists",
            )

        checkout_id = str(uuid.uuid4())
        hosted_url = (
            url_for(".pay_page", checkout_id=checkout_id, _external=True)
            if hosted.get("enabled")
            else None
        )
        checkout = SandboxCheckout(
            id=checkout_id,
            checkout_reference=reference,
            amount=amount,
            currency=currency,
            merchant_code=merchant_code,
            description=description,
            return_url=return_url,
            redirect_url=redirect_url,
            hosted_checkout_url=hosted_url,
            created_at=state.now(),
            valid_until=valid_until,
        )
        state.checkouts[checkout_id] = checkout
        return _json(_checkout_json(state, checkout), 201)

    @bp.get("/v0.1/checkouts")
    @api_call(_CHECKOUTS_MEDIA)
    async def list_checkouts() -> ResponseReturnValue:
        merchants = merchants_for_key()
        if not merchants:
            return _unauthorized(_CHECKOUTS_MEDIA)
        reference = request.args.get("checkout_reference")
        found = [
            _checkout_json(state, c)
            for c in state.checkouts.values()
            if c.merchant_code in merchants
            and (reference is None or c.checkout_reference == reference)
        ]
        return _json(found, 200)

    @bp.get("/v0.1/checkouts/<checkout_id>")
    @api_call(_CHECKOUTS_MEDIA)
    async def get_checkout(checkout_id: str) -> ResponseReturnValue:
        merchants = merchants_for_key()
        if not merchants:
            return _unauthorized(_CHECKOUTS_MEDIA)
        checkout = visible(checkout_id, merchants)
        if checkout is None:
            return _error(404, "NOT_FOUND", "Resource not found")
        return _json(_checkout_json(state, checkout), 200)

    @bp.delete("/v0.1/checkouts/<checkout_id>")
    @api_call(_CHECKOUTS_MEDIA)
    async def deactivate_checkout(checkout_id: str) -> ResponseReturnValue:
        merchants = merchants_for_key()
        if not merchants:
            return _unauthorized(_CHECKOUTS_MEDIA)
        checkout = visible(checkout_id, merchants)
        if checkout is None:
            return _error(404, "NOT_FOUND", "Resource not found")
        if checkout.status == "PAID":
            return _error(409, "CHECKOUT_PROCESSED", "Checkout is already processed")
        # SumUp refuses only a processed (paid) checkout. Closing one that is closed or past
        # its valid_until already changes nothing and answers it again, so a caller that
        # retries after a lost answer gets the same 200.
        checkout.status = "EXPIRED"
        return _json(_checkout_json(state, checkout), 200)

    @bp.post("/v1.0/merchants/<merchant_code>/payments/<transaction_id>/refunds")
    @api_call(_REFUNDS_MEDIA)
    async def refund(merchant_code: str, transaction_id: str) -> ResponseReturnValue:
        media = _REFUNDS_MEDIA
        key_merchants = merchants_for_key()
        if not key_merchants:
            return _unauthorized(media)
        if merchant_code not in key_merchants:
            return _problem(403, "Forbidden", "users is not allowed to make a refund", media)
        found = state.find_transaction(merchant_code, transaction_id)
        if found is None:
            return _problem(404, "Not Found", "Transaction not found", media)
        _, txn = found
        remaining = txn.refundable
        if remaining <= 0:
            return _problem(
                409, "Conflict", "The transaction is not refundable in its current state", media
            )
        body = await request.get_json(force=True, silent=True) or {}
        if not isinstance(body, dict):
            return _problem(400, "Bad Request", "the body must be a JSON object", media)
        if body.get("amount") is None:
            amount = remaining
        else:
            parsed = _parse_amount(body["amount"], txn.currency)
            if parsed is None:
                return _problem(400, "Bad Request", "amount must be greater than zero", media)
            amount = parsed
        if amount > remaining:
            return _problem(
                422,
                "Unprocessable Entity",
                "Refund failed.",
                media,
                errors=[
                    {
                        "code": "INVALID_AMOUNT",
                        "detail": "Amount exceeds the refundable amount",
                        "reason": "amount_too_high",
                        "max_refundable_amount": float(remaining),
                    }
                ],
            )
        txn.refunded += amount
        txn.status = "REFUNDED"
        return _json({}, 201)

    # ----------------------------------------------------------------------- hosted page

    async def page(template: str, http_status: int, **context: Any) -> ResponseReturnValue:
        return await render_template(f"sandbox/{template}", **context), http_status

    def page_context(checkout: SandboxCheckout, now: datetime) -> dict[str, Any]:
        return {
            "checkout": checkout,
            "status": checkout.status_at(now),
            "merchant": state.merchant_names.get(checkout.merchant_code, checkout.merchant_code),
            "amount": _display(checkout.amount, checkout.currency),
        }

    @bp.get("/pay/<checkout_id>")
    async def pay_page(checkout_id: str) -> ResponseReturnValue:
        checkout = state.checkouts.get(checkout_id)
        if checkout is None:
            return await page("not_found.html", 404)
        return await page("pay.html", 200, **page_context(checkout, state.now()))

    @bp.post("/pay/<checkout_id>")
    async def pay(checkout_id: str) -> ResponseReturnValue:
        checkout = state.checkouts.get(checkout_id)
        if checkout is None:
            return await page("not_found.html", 404)
        now = state.now()
        if not checkout.payable_at(now):
            # Checked before the form: a paid or closed checkout takes nothing, whatever
            # was posted (a stale tab, a replayed form), and tells nobody anything.
            return await page("pay.html", 409, **page_context(checkout, now))
        form = await request.form
        outcome = form.get("outcome")
        if outcome not in ("paid", "failed"):
            return await page("pay.html", 400, **page_context(checkout, now), error=True)

        succeeded = outcome == "paid" and checkout.amount not in ALWAYS_FAILING_AMOUNTS
        checkout.transactions.append(
            SandboxTransaction(
                id=str(uuid.uuid4()),
                transaction_code=_transaction_code(),
                status="SUCCESSFUL" if succeeded else "FAILED",
                amount=checkout.amount,
                currency=checkout.currency,
                merchant_code=checkout.merchant_code,
                timestamp=now,
            )
        )
        checkout.status = "PAID" if succeeded else "FAILED"
        await notify(checkout)
        if checkout.redirect_url:
            return redirect(checkout.redirect_url, 303)
        return await page("result.html", 200, **page_context(checkout, now))

    async def notify(checkout: SandboxCheckout) -> None:
        if not checkout.return_url:
            return
        url = checkout.return_url

        async def deliver_one() -> None:
            # Inside a coroutine so that even a deliverer raising on call is swallowed.
            await state.deliver_webhook(url, {"event_type": WEBHOOK_EVENT, "id": checkout.id})

        results = await asyncio.gather(
            *(deliver_one() for _ in range(state.webhook_copies)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.info("sandbox webhook to %s failed: %r", url, result)

    return bp
