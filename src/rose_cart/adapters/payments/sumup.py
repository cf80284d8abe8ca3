"""SumUp hosted checkouts through the official ``sumup`` SDK (pinned: it is pre-1.0).

Why the adapter looks the way it does:

- The SDK has no timeout by default and never retries. Every client is built with an
  explicit timeout so that a hung SumUp cannot hang a shopper's checkout request.
- The SDK wants floats for money while the cart keeps Decimals. Amounts become floats only
  here, after ``Money`` has rounded them to the minor unit, and become Decimals again
  (rounded the same way) on the way back, so float noise never reaches the domain.
- SumUp answers 409 DUPLICATED_CHECKOUT when a checkout reference is reused. A retry after
  a timeout does exactly that (the first request may well have landed), so creating is
  made idempotent per reference: the existing checkout is looked up and returned, but only
  when it is exactly what was asked for and still PENDING. Anything else under that
  reference is not ours to hand out (after a database restore it may be someone else's
  paid checkout), so it is refused, never taken as this attempt's checkout.
- A checkout without ``valid_until`` stays payable for ever on SumUp, so the request's
  ``valid_until`` (the attempt's end) is always passed on, in whole seconds of UTC.
- Failures are split by what anyone can do about them. ``PaymentProviderUnavailable``:
  SumUp could not be reached, timed out, failed on its side (5xx) or asked us to slow down
  (429); trying again later may work. ``PaymentProviderRejected``: SumUp refused the request
  (400/401/403/404/409/422), usually because a page's SumUp settings are wrong; retrying
  will not help. The provider's own message goes into ``details`` for the seller and the
  logs. The API key never does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from sumup import AsyncSumup
from sumup.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ConflictError,
)

from rose_cart.domain.errors import PaymentProviderRejected, PaymentProviderUnavailable
from rose_cart.domain.money import Money, quantize
from rose_cart.ports import (
    CheckoutRequest,
    CheckoutState,
    HostedCheckout,
    PaymentCredentials,
    ProviderTransaction,
)

# What one SDK call can raise besides our own errors. ValueError covers a 2xx answer whose
# body is not the documented JSON (pydantic.ValidationError and JSONDecodeError are both
# ValueErrors); httpx.HTTPError covers anything the SDK forgets to wrap.
_SDK_FAILURES: tuple[type[Exception], ...] = (APIError, httpx.HTTPError, ValueError)

# Statuses that say "not now" rather than "not this": worth retrying later.
_RATE_LIMITED = 429


class SumUpProvider:
    """``PaymentProvider`` over SumUp's Checkouts and Refunds APIs.

    Each page may have its own SumUp account, so there is one SDK client (one connection
    pool) per API key, made on first use. Call ``aclose`` on shutdown.
    """

    def __init__(self, base_url: str, timeout_seconds: float = 10.0) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._base_url = base_url
        self._timeout = httpx.Timeout(timeout_seconds)
        self._clients: dict[str, AsyncSumup] = {}

    async def aclose(self) -> None:
        """Close every SDK client; the provider can still be used afterwards."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def create_checkout(
        self, request: CheckoutRequest, credentials: PaymentCredentials
    ) -> HostedCheckout:
        """Create a hosted checkout, payable until ``request.valid_until`` when it is set.

        A reused reference returns the existing checkout only when it is still PENDING and
        matches the reference, amount, currency and merchant; otherwise
        ``PaymentProviderRejected`` (DUPLICATED_CHECKOUT) says why.
        """
        extra: dict[str, Any] = {}
        if request.valid_until is not None:
            extra["valid_until"] = _utc_seconds(request.valid_until)
        client = self._client(credentials)
        amount = request.amount
        try:
            created = await client.checkouts.create(
                checkout_reference=request.reference,
                amount=float(amount.amount),
                currency=amount.currency,
                merchant_code=credentials.merchant_code,
                description=request.description,
                return_url=request.return_url,
                redirect_url=request.redirect_url,
                hosted_checkout={"enabled": True},
                **extra,
            )
        except ConflictError:
            return await self._existing_checkout(client, request, credentials)
        except _SDK_FAILURES as exc:
            raise _translate("create_checkout", exc) from exc
        if not created.id or not created.hosted_checkout_url:
            # Happens when hosted checkout is not enabled for the merchant account.
            raise PaymentProviderRejected(
                operation="create_checkout",
                provider_message="SumUp created the checkout without a hosted checkout URL",
            )
        return HostedCheckout(created.id, created.hosted_checkout_url)

    async def get_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        """SumUp's current view of one checkout; unknown statuses are passed through."""
        client = self._client(credentials)
        try:
            checkout = await client.checkouts.get(provider_checkout_id)
        except _SDK_FAILURES as exc:
            raise _translate("get_checkout", exc) from exc
        return _state(checkout, provider_checkout_id)

    async def deactivate_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        """Close a checkout so its hosted page can no longer take money (status EXPIRED)."""
        client = self._client(credentials)
        try:
            checkout = await client.checkouts.deactivate(provider_checkout_id)
        except _SDK_FAILURES as exc:
            raise _translate("deactivate_checkout", exc) from exc
        return _state(checkout, provider_checkout_id)

    async def refund(
        self, transaction_id: str, amount: Money | None, credentials: PaymentCredentials
    ) -> None:
        """Refund a checkout's transaction (its ``transactions[].id``); None refunds it all."""
        client = self._client(credentials)
        try:
            if amount is None:
                await client.transactions.refund(credentials.merchant_code, transaction_id)
            else:
                await client.transactions.refund(
                    credentials.merchant_code, transaction_id, amount=float(amount.amount)
                )
        except _SDK_FAILURES as exc:
            raise _translate("refund", exc) from exc

    def _client(self, credentials: PaymentCredentials) -> AsyncSumup:
        if not credentials.api_key:
            # The SDK would silently fall back to $SUMUP_API_KEY: another account's money.
            raise PaymentProviderRejected(
                provider_message="no SumUp API key is configured",
                merchant_code=credentials.merchant_code,
            )
        client = self._clients.get(credentials.api_key)
        if client is None:
            client = AsyncSumup(
                api_key=credentials.api_key, base_url=self._base_url, timeout=self._timeout
            )
            self._clients[credentials.api_key] = client
        return client

    async def _existing_checkout(
        self, client: AsyncSumup, request: CheckoutRequest, credentials: PaymentCredentials
    ) -> HostedCheckout:
        try:
            found = await client.checkouts.list(checkout_reference=request.reference)
        except _SDK_FAILURES as exc:
            raise _translate("find_existing_checkout", exc) from exc
        # Our own merchant's checkout explains a refusal better than another merchant's.
        own_refusal: str | None = None
        other_refusal: str | None = None
        for checkout in found:
            if checkout.checkout_reference != request.reference or not checkout.id:
                continue
            refusal = _why_not_ours(checkout, request, credentials)
            if refusal is None and checkout.hosted_checkout_url:
                return HostedCheckout(checkout.id, checkout.hosted_checkout_url)
            if checkout.merchant_code == credentials.merchant_code:
                own_refusal = own_refusal or refusal
            else:
                other_refusal = other_refusal or refusal
        raise PaymentProviderRejected(
            operation="create_checkout",
            provider_status=409,
            provider_error_code="DUPLICATED_CHECKOUT",
            provider_message=own_refusal
            or other_refusal
            # A reference taken by a checkout this key cannot see: no retry will fix that.
            or "the reference is taken but no such checkout is visible",
        )


def _why_not_ours(
    checkout: Any, request: CheckoutRequest, credentials: PaymentCredentials
) -> str | None:
    """Why a listed checkout under our reference is not the one we asked for, or None."""
    if checkout.merchant_code != credentials.merchant_code:
        return "the reference is used by another merchant's checkout"
    currency = _text(checkout.currency)
    if (
        currency != request.amount.currency
        or _decimal(checkout.amount, currency) != request.amount.amount
    ):
        # Never hand the payer a checkout for a different sum than the order's.
        return "the reference is already used for a different amount"
    status = _text(checkout.status)
    if status != "PENDING":
        # The checkout a lost answer left behind was never shown to a payer, so it is still
        # PENDING unless it lapsed. A PAID one is somebody's payment (after a database
        # restore, somebody else's) and must never be taken for this attempt's; an EXPIRED
        # one can take no money; a FAILED one was already tried on by a payer.
        return f"the reference is already used by a checkout that is {status or 'unknown'}"
    if not checkout.hosted_checkout_url:
        return "the existing checkout has no hosted checkout URL"
    return None


def _state(checkout: Any, fallback_id: str) -> CheckoutState:
    """SumUp's checkout in our words; unknown statuses are passed through."""
    currency = _text(checkout.currency)
    transactions = tuple(
        ProviderTransaction(
            id=txn.id,
            transaction_code=txn.transaction_code,
            status=_text(txn.status) or "UNKNOWN",
            amount=_decimal(txn.amount, _text(txn.currency) or currency),
            currency=_text(txn.currency) or currency,
        )
        for txn in checkout.transactions or ()
        # Without an id a transaction can be neither refunded nor told apart.
        if txn.id
    )
    return CheckoutState(
        provider_checkout_id=checkout.id or fallback_id,
        status=_text(checkout.status) or "UNKNOWN",
        reference=checkout.checkout_reference,
        amount=_decimal(checkout.amount, currency),
        currency=currency,
        transactions=transactions,
        merchant_code=checkout.merchant_code,
    )


def _translate(
    operation: str, exc: Exception
) -> PaymentProviderUnavailable | PaymentProviderRejected:
    """Sort an SDK failure into "try again later" or "SumUp said no"."""
    if isinstance(exc, APIStatusError):
        details: dict[str, Any] = {
            "operation": operation,
            "provider_status": exc.status,
            "provider_error_code": _error_code(exc.body),
            "provider_message": exc.message,
        }
        status = exc.status or 0
        if status >= 500 or status == _RATE_LIMITED:
            return PaymentProviderUnavailable(**details)
        return PaymentProviderRejected(**details)
    if isinstance(exc, APIConnectionError):
        return PaymentProviderUnavailable(
            operation=operation,
            provider_message=exc.message,
            timed_out=isinstance(exc, APITimeoutError),
        )
    if isinstance(exc, APIError):
        # A status the SDK did not expect (e.g. 200 where 201 is documented): SumUp is
        # misbehaving, which is its side, not our settings.
        return PaymentProviderUnavailable(
            operation=operation, provider_status=exc.status, provider_message=exc.message
        )
    return PaymentProviderUnavailable(
        operation=operation,
        provider_message=f"unreadable answer from SumUp ({type(exc).__name__})",
    )


def _error_code(body: object) -> str | None:
    """SumUp's machine-readable error code, from whichever error shape it answered with."""
    if isinstance(body, list):
        body = body[0] if body else None
    if isinstance(body, dict):
        code = body.get("error_code") or body.get("type")
    else:
        code = getattr(body, "error_code", None) or getattr(body, "type", None)
    return code if isinstance(code, str) else None


def _utc_seconds(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        # The SDK would send it without an offset, leaving SumUp to guess the time zone.
        raise ValueError("valid_until must be timezone-aware")
    # SumUp documents whole seconds in UTC ("2020-02-29T10:56:56+00:00"); dropping the
    # fraction ends the checkout a moment early, never late.
    return moment.astimezone(UTC).replace(microsecond=0)


def _text(value: object) -> str | None:
    # The SDK's enums are open (Literal | str); keep whatever string SumUp sent.
    return str(value) if value is not None else None


def _decimal(value: float | None, currency: str | None) -> Decimal | None:
    if value is None:
        return None
    # str() of a float is its shortest round-trip form: 10.1 -> "10.1", not 10.0999...
    amount = Decimal(str(value))
    return quantize(amount, currency) if currency else amount
