"""``SumUpProvider`` and the raw SumUp SDK against the sandbox, over real HTTP.

The sandbox runs in a real uvicorn server on 127.0.0.1 (its own thread and event loop), so
these tests cover what unit tests cannot: the SDK's URL building under a base path, its
status-code checks and error classes, real timeouts, refused connections and webhooks
delivered over the network.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from quart import Quart, request
from sumup import AsyncSumup
from sumup.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
)

from rose_cart.adapters.payments import SumUpProvider
from rose_cart.domain.errors import PaymentProviderRejected, PaymentProviderUnavailable
from rose_cart.domain.money import Money
from rose_cart.ports import CheckoutRequest, PaymentCredentials
from rose_cart.standalone.sumup_sandbox import SandboxState, sandbox_blueprint

KEY = "sup_sk_sandbox"
MERCHANT = "MSANDBOX"
CREDENTIALS = PaymentCredentials(merchant_code=MERCHANT, api_key=KEY)
WRONG_KEY = "sup_sk_wrong_0123456789"


@dataclass
class Sandbox:
    root: str  # http://127.0.0.1:<port>
    state: SandboxState
    webhooks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.root}/sandbox/sumup"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    state = SandboxState(accounts={KEY: MERCHANT})
    app = Quart(__name__)
    app.register_blueprint(sandbox_blueprint(state), url_prefix="/sandbox/sumup")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    running = Sandbox(root=f"http://127.0.0.1:{port}", state=state)

    @app.post("/hooks/sumup")
    async def receive_webhook() -> tuple[str, int]:
        running.webhooks.append(await request.get_json())
        return "", 204

    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    # Server.run makes its own event loop in this thread; signals stay with the main thread.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the sandbox server did not start")
        time.sleep(0.02)
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(autouse=True)
def healthy(sandbox: Sandbox) -> Iterator[None]:
    sandbox.state.fault = None
    sandbox.state.webhook_copies = 1
    yield
    sandbox.state.fault = None


@pytest.fixture
async def provider(sandbox: Sandbox) -> AsyncIterator[SumUpProvider]:
    made = SumUpProvider(sandbox.base_url, timeout_seconds=5.0)
    yield made
    await made.aclose()


@pytest.fixture
async def sdk(sandbox: Sandbox) -> AsyncIterator[AsyncSumup]:
    async with AsyncSumup(api_key=KEY, base_url=sandbox.base_url, timeout=5.0) as client:
        yield client


_references = iter(range(1, 1_000_000))


def checkout_request(
    sandbox: Sandbox,
    amount: str = "12.34",
    reference: str | None = None,
    *,
    currency: str = "GBP",
    valid_until: datetime | None = None,
) -> CheckoutRequest:
    return CheckoutRequest(
        reference=reference or f"it-{time.time_ns()}-{next(_references)}",
        amount=Money(Decimal(amount), currency),
        description="Two jars of rose jam",
        return_url=f"{sandbox.root}/hooks/sumup",
        redirect_url="https://cart.example/orders/7",
        valid_until=valid_until,
    )


def set_sandbox_clock(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, moment: datetime) -> None:
    """Stop the sandbox's clock at ``moment`` for this test (it runs on real time)."""
    monkeypatch.setattr(sandbox.state, "now", lambda: moment)


async def pay_on_hosted_page(hosted_url: str, outcome: str = "paid") -> httpx.Response:
    async with httpx.AsyncClient(timeout=5.0) as browser:
        return await browser.post(hosted_url, data={"outcome": outcome})


# --------------------------------------------------------------------------- our provider


async def test_created_checkout_has_a_hosted_page_showing_the_exact_amount(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    req = checkout_request(sandbox, "12.34")

    hosted = await provider.create_checkout(req, CREDENTIALS)

    stored = sandbox.state.checkouts[hosted.provider_checkout_id]
    assert stored.amount == Decimal("12.34")
    assert stored.checkout_reference == req.reference
    assert stored.return_url == req.return_url
    assert stored.redirect_url == req.redirect_url
    assert hosted.hosted_url == f"{sandbox.base_url}/pay/{hosted.provider_checkout_id}"
    async with httpx.AsyncClient(timeout=5.0) as browser:
        page = await browser.get(hosted.hosted_url)
    assert page.status_code == 200
    assert "£12.34" in page.text
    assert "Two jars of rose jam" in page.text


async def test_paying_shows_up_in_get_checkout_and_sends_the_webhook(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    hosted = await provider.create_checkout(checkout_request(sandbox, "0.10"), CREDENTIALS)
    before = await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)
    assert (before.status, before.transactions) == ("PENDING", ())

    response = await pay_on_hosted_page(hosted.hosted_url)

    assert response.status_code == 303
    assert response.headers["location"] == "https://cart.example/orders/7"
    state = await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)
    assert state.status == "PAID"
    assert state.amount == Decimal("0.10")
    assert state.currency == "GBP"
    [txn] = state.transactions
    assert (txn.status, txn.amount, txn.currency) == ("SUCCESSFUL", Decimal("0.10"), "GBP")
    assert txn.transaction_code
    assert {"event_type": "CHECKOUT_STATUS_CHANGED", "id": hosted.provider_checkout_id} in (
        sandbox.webhooks
    )


async def test_a_declined_then_paid_checkout_reads_failed_then_paid(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    hosted = await provider.create_checkout(checkout_request(sandbox, "42.01"), CREDENTIALS)

    await pay_on_hosted_page(hosted.hosted_url, "paid")  # a sandbox amount that always fails

    state = await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)
    assert state.status == "FAILED"
    assert [t.status for t in state.transactions] == ["FAILED"]


async def test_a_deactivated_checkout_cannot_be_paid_and_a_paid_one_cannot_be_closed(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    hosted = await provider.create_checkout(checkout_request(sandbox, "3.00"), CREDENTIALS)
    closed = await provider.deactivate_checkout(hosted.provider_checkout_id, CREDENTIALS)
    assert closed.status == "EXPIRED"
    await pay_on_hosted_page(hosted.hosted_url)
    state = await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)
    assert state.status == "EXPIRED" and state.transactions == ()

    paid = await provider.create_checkout(checkout_request(sandbox, "3.00"), CREDENTIALS)
    await pay_on_hosted_page(paid.hosted_url)
    with pytest.raises(PaymentProviderRejected):
        await provider.deactivate_checkout(paid.provider_checkout_id, CREDENTIALS)
    assert (await provider.get_checkout(paid.provider_checkout_id, CREDENTIALS)).status == "PAID"


async def test_valid_until_reaches_sumup_and_ends_the_checkout(
    sandbox: Sandbox, provider: SumUpProvider, sdk: AsyncSumup, monkeypatch: pytest.MonkeyPatch
) -> None:
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    # Any time zone and a fraction of a second: SumUp gets whole seconds in UTC.
    sent = end.astimezone(timezone(timedelta(hours=2))) + timedelta(milliseconds=250)
    hosted = await provider.create_checkout(
        checkout_request(sandbox, "8.00", valid_until=sent), CREDENTIALS
    )
    checkout_id = hosted.provider_checkout_id

    assert sandbox.state.checkouts[checkout_id].valid_until == end
    assert (await sdk.checkouts.get(checkout_id)).valid_until == end
    set_sandbox_clock(monkeypatch, sandbox, end - timedelta(seconds=1))
    assert (await provider.get_checkout(checkout_id, CREDENTIALS)).status == "PENDING"

    set_sandbox_clock(monkeypatch, sandbox, end)
    assert (await provider.get_checkout(checkout_id, CREDENTIALS)).status == "EXPIRED"
    response = await pay_on_hosted_page(hosted.hosted_url)
    assert response.status_code == 409
    assert "This payment link has expired" in response.text
    after = await provider.get_checkout(checkout_id, CREDENTIALS)
    assert (after.status, after.transactions) == ("EXPIRED", ())
    assert all(hook.get("id") != checkout_id for hook in sandbox.webhooks)


async def test_without_valid_until_the_checkout_stays_payable(
    sandbox: Sandbox, provider: SumUpProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosted = await provider.create_checkout(checkout_request(sandbox, "8.00"), CREDENTIALS)
    assert sandbox.state.checkouts[hosted.provider_checkout_id].valid_until is None

    set_sandbox_clock(monkeypatch, sandbox, datetime.now(UTC) + timedelta(days=3))

    state = await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)
    assert state.status == "PENDING"


async def test_a_valid_until_without_a_time_zone_is_refused_before_calling_sumup(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    req = checkout_request(sandbox, valid_until=naive)

    with pytest.raises(ValueError, match="timezone-aware"):
        await provider.create_checkout(req, CREDENTIALS)

    assert all(c.checkout_reference != req.reference for c in sandbox.state.checkouts.values())


async def test_a_reused_reference_returns_the_existing_pending_checkout(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    req = checkout_request(sandbox, valid_until=datetime.now(UTC) + timedelta(hours=1))
    first = await provider.create_checkout(req, CREDENTIALS)

    again = await provider.create_checkout(req, CREDENTIALS)

    assert again == first
    matching = [
        c for c in sandbox.state.checkouts.values() if c.checkout_reference == req.reference
    ]
    assert len(matching) == 1
    assert matching[0].status_at(sandbox.state.now()) == "PENDING"


async def refused_duplicate(
    provider: SumUpProvider, req: CheckoutRequest, credentials: PaymentCredentials = CREDENTIALS
) -> str:
    """Create ``req`` again; it must be refused as a duplicate. Returns SumUp's reason."""
    with pytest.raises(PaymentProviderRejected) as caught:
        await provider.create_checkout(req, credentials)
    details = caught.value.details
    assert (details["provider_status"], details["provider_error_code"]) == (
        409,
        "DUPLICATED_CHECKOUT",
    )
    return str(details["provider_message"])


async def test_a_reused_reference_of_a_paid_checkout_is_refused(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    # After a database restore the cart may make a reference again that a payer has
    # already paid under: that payment is not this attempt's.
    req = checkout_request(sandbox, "7.00")
    hosted = await provider.create_checkout(req, CREDENTIALS)
    await pay_on_hosted_page(hosted.hosted_url)

    reason = await refused_duplicate(provider, req)

    assert "PAID" in reason


@pytest.mark.parametrize("how", ["closed", "lapsed"])
async def test_a_reused_reference_of_an_expired_checkout_is_refused(
    sandbox: Sandbox, provider: SumUpProvider, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    req = checkout_request(sandbox, "7.00", valid_until=end)
    hosted = await provider.create_checkout(req, CREDENTIALS)
    if how == "closed":
        await provider.deactivate_checkout(hosted.provider_checkout_id, CREDENTIALS)
    else:
        set_sandbox_clock(monkeypatch, sandbox, end)

    reason = await refused_duplicate(provider, req)

    assert "EXPIRED" in reason


async def test_a_reused_reference_of_a_failed_checkout_is_refused(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    req = checkout_request(sandbox, "42.76")  # a sandbox amount that always fails
    hosted = await provider.create_checkout(req, CREDENTIALS)
    await pay_on_hosted_page(hosted.hosted_url)

    reason = await refused_duplicate(provider, req)

    assert "FAILED" in reason


@pytest.mark.parametrize(("amount", "currency"), [("6.00", "GBP"), ("5.00", "EUR")])
async def test_a_reused_reference_for_a_different_amount_or_currency_is_refused(
    sandbox: Sandbox, provider: SumUpProvider, amount: str, currency: str
) -> None:
    req = checkout_request(sandbox, "5.00")
    await provider.create_checkout(req, CREDENTIALS)

    reason = await refused_duplicate(
        provider, checkout_request(sandbox, amount, req.reference, currency=currency)
    )

    assert "different amount" in reason


async def test_a_reused_reference_never_recovers_another_merchants_checkout(
    sandbox: Sandbox, provider: SumUpProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key acting for two merchants lists both merchants' checkouts under a reference.
    monkeypatch.setitem(sandbox.state.accounts, "sup_sk_both", frozenset({MERCHANT, "MSECOND"}))
    second = PaymentCredentials(merchant_code="MSECOND", api_key="sup_sk_both")
    req = checkout_request(sandbox, "7.00")
    pending_elsewhere = await provider.create_checkout(req, CREDENTIALS)
    paid_here = await provider.create_checkout(req, second)
    await pay_on_hosted_page(paid_here.hosted_url)

    # The only PENDING checkout for this amount under the reference is MSANDBOX's.
    reason = await refused_duplicate(provider, req, second)

    assert "PAID" in reason
    assert (
        await provider.get_checkout(pending_elsewhere.provider_checkout_id, CREDENTIALS)
    ).status == "PENDING"
    # The same listing still gives MSANDBOX its own pending checkout back.
    both_for_first = PaymentCredentials(merchant_code=MERCHANT, api_key="sup_sk_both")
    assert await provider.create_checkout(req, both_for_first) == pending_elsewhere


async def test_a_retry_after_a_timeout_gets_the_checkout_that_landed(
    sandbox: Sandbox,
) -> None:
    impatient = SumUpProvider(sandbox.base_url, timeout_seconds=0.2)
    sandbox.state.fault = "late"  # SumUp creates the checkout, the answer never arrives
    sandbox.state.fault_delay = 0.6
    req = checkout_request(sandbox)
    try:
        started = time.monotonic()
        with pytest.raises(PaymentProviderUnavailable) as caught:
            await impatient.create_checkout(req, CREDENTIALS)
        assert time.monotonic() - started < 0.55  # our timeout, not the server's delay
        assert caught.value.details["timed_out"] is True

        sandbox.state.fault = None
        landed = await wait_for_checkout(sandbox, req.reference)
        again = await impatient.create_checkout(req, CREDENTIALS)
        assert again.provider_checkout_id == landed
    finally:
        await impatient.aclose()


async def wait_for_checkout(sandbox: Sandbox, reference: str) -> str:
    for _ in range(100):
        for checkout in list(sandbox.state.checkouts.values()):
            if checkout.checkout_reference == reference:
                return checkout.id
        await asyncio.sleep(0.02)
    raise AssertionError(f"no checkout {reference} ever landed")


async def test_a_wrong_key_is_rejected_without_leaking_it(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    credentials = PaymentCredentials(merchant_code=MERCHANT, api_key=WRONG_KEY)

    with pytest.raises(PaymentProviderRejected) as caught:
        await provider.create_checkout(checkout_request(sandbox), credentials)

    error = caught.value
    assert error.details["provider_status"] == 401
    assert error.details["provider_message"] == "Unauthorized."
    assert WRONG_KEY not in f"{error} {error.details!r} {error.message}"
    assert WRONG_KEY not in repr(credentials)


async def test_a_merchant_code_the_key_does_not_own_is_rejected(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    credentials = PaymentCredentials(merchant_code="MSOMEONEELSE", api_key=KEY)

    with pytest.raises(PaymentProviderRejected) as caught:
        await provider.create_checkout(checkout_request(sandbox), credentials)

    assert caught.value.details["provider_status"] == 403


async def test_an_unknown_checkout_is_rejected_as_not_found(provider: SumUpProvider) -> None:
    with pytest.raises(PaymentProviderRejected) as caught:
        await provider.get_checkout("no-such-checkout", CREDENTIALS)

    assert caught.value.details["provider_status"] == 404
    assert caught.value.details["provider_error_code"] == "NOT_FOUND"


async def test_an_empty_key_is_refused_not_replaced_by_the_environment(
    sandbox: Sandbox, provider: SumUpProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMUP_API_KEY", KEY)  # what the SDK would silently fall back to
    before = len(sandbox.state.checkouts)

    with pytest.raises(PaymentProviderRejected):
        await provider.create_checkout(
            checkout_request(sandbox), PaymentCredentials(merchant_code=MERCHANT, api_key="")
        )

    assert len(sandbox.state.checkouts) == before


async def test_server_errors_make_the_provider_unavailable(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    hosted = await provider.create_checkout(checkout_request(sandbox), CREDENTIALS)
    sandbox.state.fault = "500"

    with pytest.raises(PaymentProviderUnavailable) as on_create:
        await provider.create_checkout(checkout_request(sandbox), CREDENTIALS)
    with pytest.raises(PaymentProviderUnavailable) as on_get:
        await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)
    with pytest.raises(PaymentProviderUnavailable):
        await provider.refund("any", None, CREDENTIALS)

    assert on_create.value.details["provider_status"] == 500
    assert on_get.value.details["operation"] == "get_checkout"


async def test_a_slow_provider_times_out_as_unavailable(sandbox: Sandbox) -> None:
    impatient = SumUpProvider(sandbox.base_url, timeout_seconds=0.2)
    sandbox.state.fault = "timeout"
    sandbox.state.fault_delay = 0.6
    try:
        started = time.monotonic()
        with pytest.raises(PaymentProviderUnavailable) as caught:
            await impatient.get_checkout("whatever", CREDENTIALS)
        assert time.monotonic() - started < 0.55
        assert caught.value.details["timed_out"] is True
    finally:
        await impatient.aclose()


async def test_an_unreachable_provider_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but never listening: connections are refused
        nowhere = SumUpProvider(f"http://127.0.0.1:{port}/sandbox/sumup", timeout_seconds=2.0)
        try:
            with pytest.raises(PaymentProviderUnavailable) as caught:
                await nowhere.get_checkout("whatever", CREDENTIALS)
        finally:
            await nowhere.aclose()

    assert caught.value.details["timed_out"] is False


async def test_a_paid_checkout_can_be_refunded_once(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    hosted = await provider.create_checkout(checkout_request(sandbox, "9.99"), CREDENTIALS)
    await pay_on_hosted_page(hosted.hosted_url)
    [txn] = (await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)).transactions

    await provider.refund(txn.id, None, CREDENTIALS)

    after = await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)
    assert [t.status for t in after.transactions] == ["REFUNDED"]
    with pytest.raises(PaymentProviderRejected) as caught:
        await provider.refund(txn.id, None, CREDENTIALS)
    assert caught.value.details["provider_status"] == 409


async def test_partial_refunds_cannot_exceed_the_payment(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    hosted = await provider.create_checkout(checkout_request(sandbox, "10.00"), CREDENTIALS)
    await pay_on_hosted_page(hosted.hosted_url)
    [txn] = (await provider.get_checkout(hosted.provider_checkout_id, CREDENTIALS)).transactions

    await provider.refund(txn.id, Money(Decimal("4.00"), "GBP"), CREDENTIALS)

    stored = sandbox.state.find_transaction(MERCHANT, txn.id)
    assert stored is not None and stored[1].refunded == Decimal("4.00")
    with pytest.raises(PaymentProviderRejected) as caught:
        await provider.refund(txn.id, Money(Decimal("6.01"), "GBP"), CREDENTIALS)
    assert caught.value.details["provider_status"] == 422


async def test_the_provider_still_works_after_aclose(
    sandbox: Sandbox, provider: SumUpProvider
) -> None:
    await provider.create_checkout(checkout_request(sandbox), CREDENTIALS)
    await provider.aclose()

    hosted = await provider.create_checkout(checkout_request(sandbox), CREDENTIALS)

    assert hosted.provider_checkout_id in sandbox.state.checkouts


# --------------------------------------------------------------------------- the raw SDK


async def test_sdk_create_get_list_and_deactivate(sandbox: Sandbox, sdk: AsyncSumup) -> None:
    reference = f"sdk-{time.time_ns()}"

    created = await sdk.checkouts.create(
        checkout_reference=reference,
        amount=10.1,
        currency="EUR",
        merchant_code=MERCHANT,
        description="SDK check",
        hosted_checkout={"enabled": True},
    )
    fetched = await sdk.checkouts.get(created.id)
    listed = await sdk.checkouts.list(checkout_reference=reference)
    deactivated = await sdk.checkouts.deactivate(created.id)

    assert created.status == "PENDING"
    assert created.amount == 10.1
    assert created.hosted_checkout_url == f"{sandbox.base_url}/pay/{created.id}"
    assert (fetched.id, fetched.checkout_reference) == (created.id, reference)
    assert [c.id for c in listed] == [created.id]
    assert deactivated.status == "EXPIRED"
    assert (await sdk.checkouts.get(created.id)).status == "EXPIRED"


async def test_sdk_duplicate_reference_raises_conflict(sdk: AsyncSumup) -> None:
    reference = f"sdk-dup-{time.time_ns()}"
    fields: dict[str, Any] = {
        "checkout_reference": reference,
        "amount": 5.0,
        "currency": "GBP",
        "merchant_code": MERCHANT,
    }
    await sdk.checkouts.create(**fields)

    with pytest.raises(ConflictError) as caught:
        await sdk.checkouts.create(**fields)

    assert caught.value.status == 409
    assert caught.value.body.error_code == "DUPLICATED_CHECKOUT"


async def test_sdk_wrong_key_raises_authentication_error(sandbox: Sandbox) -> None:
    async with AsyncSumup(api_key=WRONG_KEY, base_url=sandbox.base_url, timeout=5.0) as wrong:
        with pytest.raises(AuthenticationError) as caught:
            await wrong.checkouts.list(checkout_reference="anything")

    assert caught.value.status == 401
    assert caught.value.problem is not None
    assert caught.value.problem.title == "Unauthorized"


async def test_sdk_bad_request_and_not_found(sdk: AsyncSumup) -> None:
    with pytest.raises(BadRequestError) as bad:
        await sdk.checkouts.create(
            checkout_reference=f"sdk-bad-{time.time_ns()}",
            amount=5.0,
            currency="XYZ",
            merchant_code=MERCHANT,
        )
    with pytest.raises(NotFoundError):
        await sdk.checkouts.get("no-such-checkout")

    assert bad.value.body.param == "currency"


async def test_sdk_server_error_raises_internal_server_error(
    sandbox: Sandbox, sdk: AsyncSumup
) -> None:
    sandbox.state.fault = "500"

    with pytest.raises(InternalServerError) as caught:
        await sdk.checkouts.list()

    assert caught.value.status == 500


async def test_sdk_refunds_a_paid_transaction(sandbox: Sandbox, sdk: AsyncSumup) -> None:
    created = await sdk.checkouts.create(
        checkout_reference=f"sdk-refund-{time.time_ns()}",
        amount=20.0,
        currency="GBP",
        merchant_code=MERCHANT,
        hosted_checkout={"enabled": True},
    )
    await pay_on_hosted_page(created.hosted_checkout_url)
    paid = await sdk.checkouts.get(created.id)
    assert paid.status == "PAID"

    answer = await sdk.transactions.refund(MERCHANT, paid.transaction_id, amount=5.0)

    assert answer == {}
    stored = sandbox.state.find_transaction(MERCHANT, paid.transaction_id)
    assert stored is not None and stored[1].refunded == Decimal("5")
