"""An order's whole life under real parallelism on PostgreSQL: late payments racing the
reconciler and webhooks, pay again racing a payment or the reconciler, two tabs pressing pay
again, two relays, a relay killed mid-batch, a flood of webhooks for a revived order, and a
revived order's claims racing their release.

Two "processes" share the fakes (SumUp, the events service, the clock): ``web`` serves the
visitor and SumUp's webhooks through the app, ``worker`` runs the reconciler and the relay.
Each has its own engine, so every call below opens its own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import pytest
from quart import Quart

from rose_cart.app import create_app
from rose_cart.bootstrap import Overrides, build_services
from rose_cart.config import Settings
from rose_cart.domain.errors import OrderNotPayable
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import EXPIRY_GRACE, AttemptStatus, Command, CommandType, OrderStatus
from rose_cart.ports import CheckoutState, OutboxRecord, PaymentCredentials
from rose_cart.services.container import Services
from rose_cart.services.relay import OutboxRelay
from tests.fakes import (
    VIOLATIONS,
    FakeBlog,
    FakeCache,
    FakeCalendar,
    FakeClock,
    FakeMarket,
    FakePaymentProvider,
    FakeSubscriber,
    GuardedUnitOfWorkFactory,
)
from tests.unit.services.conftest import CATALOG

pytestmark = pytest.mark.postgres

T = TypeVar("T")
#: No test here may hang: every race is given this long to finish.
BOUND = 10.0


class SlowProvider(FakePaymentProvider):
    """SumUp taking a moment to answer, so concurrent calls overlap; and a payer who can
    only pay a checkout that is still open."""

    def __init__(self) -> None:
        super().__init__()
        self.get_delay = 0.0
        self.deactivate_delay = 0.0
        #: Called with the checkout id when a close reaches SumUp (it answers after the delay).
        self.before_deactivate: Callable[[str], None] | None = None

    async def get_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        if self.get_delay:
            await asyncio.sleep(self.get_delay)
        return await super().get_checkout(provider_checkout_id, credentials)

    async def deactivate_checkout(
        self, provider_checkout_id: str, credentials: PaymentCredentials
    ) -> CheckoutState:
        if self.before_deactivate is not None:
            self.before_deactivate(provider_checkout_id)
        if self.deactivate_delay:
            await asyncio.sleep(self.deactivate_delay)
        return await super().deactivate_checkout(provider_checkout_id, credentials)

    def pay(self, checkout_id: str) -> bool:
        """The payer presses "pay" on the hosted page: SumUp takes money only through a
        checkout that is still open."""
        if self.checkouts[checkout_id]["status"] not in {"PENDING", "FAILED"}:
            return False
        self.settle(checkout_id, "PAID")
        return True

    def of_order(self, order_id: int) -> list[str]:
        return [
            cid
            for cid, data in self.checkouts.items()
            if data["request"].description.endswith(f"order #{order_id}")
        ]

    def live_for(self, order_id: int) -> list[str]:
        """The order's checkouts that could still take money."""
        live = set(self.live())
        return [cid for cid in self.of_order(order_id) if cid in live]

    def paid_for(self, order_id: int) -> list[str]:
        return [c for c in self.of_order(order_id) if self.checkouts[c]["status"] == "PAID"]


@dataclass
class Rig:
    web: Services
    app: Quart
    worker: Services
    provider: SlowProvider
    calendar: FakeCalendar
    clock: FakeClock
    subscriber: FakeSubscriber


@contextlib.asynccontextmanager
async def rig(url: str, calendar: FakeCalendar | None = None) -> AsyncIterator[Rig]:
    provider, clock, subscriber = SlowProvider(), FakeClock(), FakeSubscriber()
    calendar = calendar or FakeCalendar()
    market = FakeMarket(CATALOG)
    settings = Settings(database_url=url, migrate_on_start=False, run_reconciler=False)

    def overrides() -> Overrides:
        return Overrides(
            market=market,
            blog=FakeBlog(),
            calendar=calendar,
            cache=FakeCache(),
            clock=clock,
            payments=provider,
            subscriber=subscriber,
            wrap_uow=GuardedUnitOfWorkFactory,
        )

    VIOLATIONS.clear()
    web = build_services(settings, overrides())
    worker = build_services(settings, overrides())
    try:
        yield Rig(
            web, create_app(settings, services=web), worker, provider, calendar, clock, subscriber
        )
    finally:
        await web.aclose()
        await worker.aclose()
    assert VIOLATIONS == [], f"remote calls inside a transaction: {VIOLATIONS}"


async def bounded(*calls: Awaitable[T]) -> list[T]:
    return list(await asyncio.wait_for(asyncio.gather(*calls), BOUND))


def buyer(n: int) -> CartIdentity:
    return CartIdentity(user_id=100 + n)


async def checked_out(r: Rig, who: CartIdentity) -> tuple[int, str]:
    """A visitor with two loaves checks out the bakery's lines: (order id, checkout id)."""
    await r.web.cart.add(who, 1, 2)
    result = await r.web.checkout.checkout(who, "bakery")
    return result.order.id, result.payment_url.rsplit("/", 1)[-1]


async def failed_once(r: Rig, who: CartIdentity) -> tuple[int, str]:
    """An order whose first payment was declined on the hosted page."""
    order_id, checkout_id = await checked_out(r, who)
    r.provider.settle(checkout_id, "FAILED")
    order = await r.web.payments.check_payment_status(order_id)
    assert order.status == OrderStatus.FAILED
    return order_id, checkout_id


async def webhook(r: Rig, order_id: int, checkout_id: str) -> int:
    """SumUp's notification, through the app, as SumUp sends it."""
    order = await r.web.payments.get(order_id)
    body = json.dumps({"event_type": "CHECKOUT_STATUS_CHANGED", "id": checkout_id})
    response = await r.app.test_client().post(
        f"/checkout/webhook/{order_id}/{order.webhook_token}/", data=body
    )
    return int(response.status_code)


async def outbox_of(s: Services, order_id: int) -> list[OutboxRecord]:
    async with s.payments.uow() as tx:
        return await tx.outbox.for_order(order_id)


async def outbox_types(s: Services, order_id: int) -> Counter[str]:
    return Counter(record.type for record in await outbox_of(s, order_id))


def claims_state(calendar: FakeCalendar, order_id: int) -> str:
    """Where the order's bookings end up, from what the events service was asked since
    they were claimed at checkout."""
    state = "claimed"
    for name, arg in calendar.calls:
        if arg != order_id:
            continue
        if name == "claim_entries":
            state = "claimed"
        elif name == "release":
            state = "released"
        elif name == "confirm_entries" and state != "released":
            state = "confirmed"
    return state


async def assert_paid_once(r: Rig, who: CartIdentity, order_id: int) -> None:
    """Exactly one paid outcome, whatever raced: one OrderPaid, the claims confirmed (or,
    when the order had expired first, taken again) exactly once, nothing left released, the
    ordered loaves out of the cart, no checkout left that could take money again."""
    order = await r.web.payments.get(order_id)
    assert order.status == OrderStatus.PAID
    assert not order.needs_refund
    assert [a.status for a in order.attempts].count(AttemptStatus.PAID) == 1
    kinds = await outbox_types(r.web, order_id)
    assert kinds["rose:OrderPaid"] == 1
    expired_first = kinds["rose:OrderExpired"] == 1
    if expired_first:
        assert (kinds[CommandType.RELEASE_CLAIMS], kinds[CommandType.RECLAIM_CLAIMS]) == (1, 1)
        assert kinds[CommandType.CONFIRM_CLAIMS] == 0
    else:
        assert kinds["rose:OrderExpired"] == 0
        assert kinds[CommandType.CONFIRM_CLAIMS] == 1
        assert kinds[CommandType.RELEASE_CLAIMS] == kinds[CommandType.RECLAIM_CLAIMS] == 0

    await r.worker.relay.run_until_idle()
    records = await outbox_of(r.worker, order_id)
    assert {rec.status for rec in records} == {"done"}
    assert r.calendar.count("confirm_entries", order_id) == 1
    assert r.calendar.count("confirm_tickets", order_id) == 1
    # Claimed at checkout, and again by the reclaim if the order had expired.
    assert r.calendar.count("claim_entries", order_id) == (2 if expired_first else 1)
    if not expired_first:
        assert r.calendar.count("release", order_id) == 0
    assert claims_state(r.calendar, order_id) == "confirmed"
    delivered = [a for a in r.subscriber.received if a["object"]["id"] == str(order_id)]
    assert [a["type"] for a in delivered].count("rose:OrderPaid") == 1
    assert (await r.web.cart.cart(who)).count == 0
    assert r.provider.live_for(order_id) == []


# --------------------------------------------------------------------------- late payment


async def test_late_payment_racing_the_reconciler_and_webhooks_pays_once(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        alice = buyer(1)
        order_id, checkout_id = await checked_out(r, alice)
        attempt = (await r.web.payments.get(order_id)).attempts[0]
        # The payment window and its grace are over; the payer paid in the last second.
        r.clock.current = attempt.valid_until + EXPIRY_GRACE + timedelta(minutes=1)
        r.provider.settle(checkout_id, "PAID")
        r.provider.get_delay = r.provider.deactivate_delay = 0.02

        results = await bounded(
            r.worker.payments.reconcile(every=timedelta(0)),
            *[webhook(r, order_id, checkout_id) for _ in range(6)],
            *[r.web.orders.view(alice, order_id, check=True) for _ in range(3)],
        )

        assert results[0].checked == 1
        assert results[1:7] == [204] * 6
        assert all(view.order.status == OrderStatus.PAID for view in results[7:])
        await assert_paid_once(r, alice, order_id)


async def test_payment_landing_between_the_reconcilers_check_and_its_close_wins(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        alice = buyer(2)
        order_id, checkout_id = await checked_out(r, alice)
        attempt = (await r.web.payments.get(order_id)).attempts[0]
        r.clock.current = attempt.valid_until + EXPIRY_GRACE + timedelta(minutes=1)
        r.provider.get_delay = r.provider.deactivate_delay = 0.02
        paid = asyncio.Event()

        def payer_pays_just_before_the_close(cid: str) -> None:
            # The reconciler saw PENDING; the payment lands before its close arrives, which
            # SumUp then refuses (409: already processed).
            if cid == checkout_id and r.provider.pay(cid):
                paid.set()

        r.provider.before_deactivate = payer_pays_just_before_the_close

        async def sumup_notifies() -> list[int]:
            await paid.wait()
            return await asyncio.gather(*[webhook(r, order_id, checkout_id) for _ in range(5)])

        report, hooks = await bounded(
            r.worker.payments.reconcile(every=timedelta(0)), sumup_notifies()
        )

        assert paid.is_set() and r.provider.deactivated == []
        assert (report.checked, report.paid, report.expired) == (1, 1, 0)
        assert hooks == [204] * 5
        await assert_paid_once(r, alice, order_id)


#: The payment completes once the reconciler has finished.
AFTER_THE_RECONCILER = -1.0


async def payment_completing_after_the_close(r: Rig, who: CartIdentity, after: float) -> str:
    """The reconciler closes a checkout past its window while SumUp is already taking the
    payment, which completes ``after`` seconds later; SumUp then notifies, several times,
    while the reconciler may still be expiring the order. Returns what happened first."""
    order_id, checkout_id = await checked_out(r, who)
    attempt = (await r.web.payments.get(order_id)).attempts[0]
    r.clock.current = attempt.valid_until + EXPIRY_GRACE + timedelta(minutes=1)
    r.provider.get_delay = r.provider.deactivate_delay = 0.01
    paid = asyncio.Event()
    completing: list[asyncio.Task[None]] = []

    reconciled = asyncio.Event()

    async def in_flight_payment_completes() -> None:
        if after == AFTER_THE_RECONCILER:
            await reconciled.wait()
        else:
            await asyncio.sleep(r.provider.deactivate_delay + after)
        r.provider.settle(checkout_id, "PAID")
        paid.set()

    def close_arrives(cid: str) -> None:
        if cid == checkout_id and not completing:
            completing.append(asyncio.create_task(in_flight_payment_completes()))

    async def sumup_notifies() -> list[int]:
        await paid.wait()
        return await asyncio.gather(*[webhook(r, order_id, checkout_id) for _ in range(5)])

    async def reconciler() -> None:
        await r.worker.payments.reconcile(every=timedelta(0))
        reconciled.set()

    r.provider.before_deactivate = close_arrives
    try:
        _, hooks = await bounded(reconciler(), sumup_notifies())
        await asyncio.gather(*completing)
    finally:
        r.provider.before_deactivate = None
    assert hooks == [204] * 5
    expired_first = (await outbox_types(r.web, order_id))["rose:OrderExpired"] == 1
    await assert_paid_once(r, who, order_id)
    return "expired, then revived" if expired_first else "paid"


async def test_payment_completing_just_after_the_reconcilers_close_is_one_outcome(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        outcomes = Counter(
            [
                await payment_completing_after_the_close(r, buyer(3 + n), after)
                for n, after in enumerate([0.0, 0.01, 0.03, 0.06, 0.1, AFTER_THE_RECONCILER])
            ]
        )
        # Whichever came first, one paid outcome; the last payment found it expired.
        assert outcomes["expired, then revived"] >= 1, outcomes


# --------------------------------------------------------------------------- pay again


#: The payer pays the old checkout once SumUp has closed it (and is refused).
AFTER_THE_CLOSE = -1.0


async def pay_again_against_a_payment(
    r: Rig, who: CartIdentity, rng: random.Random, pays_after: float
) -> str:
    """The payer presses "pay again" while, in another tab, paying the old (declined)
    checkout ``pays_after`` seconds later; SumUp then notifies. Returns which came first."""
    order_id, old = await failed_once(r, who)
    r.provider.get_delay = rng.uniform(0, 0.03)
    r.provider.deactivate_delay = rng.uniform(0, 0.03)
    r.provider.create_delay = rng.uniform(0, 0.03)
    closing = asyncio.Event()

    def close_arrives(cid: str) -> None:
        if cid == old:
            closing.set()

    async def payer_retries_on_the_old_page() -> bool:
        if pays_after == AFTER_THE_CLOSE:
            await closing.wait()
            # SumUp answers the close after its delay; the payment comes just after that.
            await asyncio.sleep(r.provider.deactivate_delay + 0.01)
        elif pays_after:
            await asyncio.sleep(pays_after + rng.uniform(0, 0.01))
        if not r.provider.pay(old):
            return False
        await asyncio.gather(*[webhook(r, order_id, old) for _ in range(3)])
        return True

    r.provider.before_deactivate = close_arrives
    try:
        start, old_paid = await bounded(
            r.web.orders.pay_again(who, order_id), payer_retries_on_the_old_page()
        )
    finally:
        r.provider.before_deactivate = None

    # Whatever interleaving: never two checkouts that could take money.
    assert len(r.provider.live_for(order_id)) <= 1
    await r.worker.relay.run_until_idle()
    order = await r.web.payments.get(order_id)
    live = r.provider.live_for(order_id)
    assert len(live) <= 1
    paid_attempts = [a for a in order.attempts if a.status == AttemptStatus.PAID]
    assert len(paid_attempts) == len(r.provider.paid_for(order_id))
    if len(paid_attempts) >= 2:
        assert order.needs_refund
    if old_paid:
        assert order.status == OrderStatus.PAID
        assert live == []
        assert (await outbox_types(r.web, order_id))["rose:OrderPaid"] == 1
        assert (await r.web.cart.cart(who)).count == 0
        return "old checkout paid"
    assert order.status == OrderStatus.PENDING
    latest = order.latest_attempt
    assert latest is not None and latest.provider_checkout_id is not None
    assert live == [latest.provider_checkout_id]
    assert start.payment_url == latest.hosted_url
    assert (await r.web.cart.cart(who)).count == 2
    return "pay again first"


async def test_pay_again_racing_a_payment_of_the_old_checkout_never_charges_twice_unflagged(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        rng = random.Random(20261121)
        # Pay again closes the old checkout some 0.05 s in: the payment lands at once, well
        # before, around, or after that, or once the close is done.
        timings = [0.0, 0.02, 0.04, 0.05, 0.06, 0.08, 0.1, AFTER_THE_CLOSE]
        outcomes = Counter(
            [
                await pay_again_against_a_payment(r, buyer(10 + n), rng, pays_after)
                for n, pays_after in enumerate(timings)
            ]
        )
        assert set(outcomes) == {"old checkout paid", "pay again first"}, outcomes


# --------------------------------------------------------------------------- two tabs


async def test_two_tabs_pressing_pay_again_make_one_attempt_and_one_live_checkout(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        for n in range(3):
            who = buyer(30 + n)
            order_id, old = await failed_once(r, who)
            r.provider.get_delay = r.provider.deactivate_delay = 0.02
            r.provider.create_delay = 0.03 + 0.02 * n

            first, second = await bounded(
                r.web.orders.pay_again(who, order_id), r.web.orders.pay_again(who, order_id)
            )

            order = await r.web.payments.get(order_id)
            assert [a.status for a in order.attempts] == [
                AttemptStatus.DECLINED,
                AttemptStatus.PENDING,
            ], n
            new = order.attempts[1]
            assert r.provider.live_for(order_id) == [new.provider_checkout_id], n
            # Both tabs go to the one new payment page.
            assert first.payment_url == second.payment_url == new.hosted_url, n
            await r.worker.relay.run_until_idle()
            assert r.provider.live_for(order_id) == [new.provider_checkout_id], n
            r.provider.get_delay = r.provider.deactivate_delay = r.provider.create_delay = 0


# --------------------------------------------------------------------------- two relays


async def add_commands(s: Services, clock: FakeClock, order_ids: list[int]) -> list[str]:
    """Confirm-claims commands, one a second apart (so a batch's order is known)."""
    ids = []
    for order_id in order_ids:
        async with s.payments.uow() as tx:
            ids.append(
                await tx.outbox.add_command(
                    Command(CommandType.CONFIRM_CLAIMS, order_id), clock.now()
                )
            )
        clock.advance(seconds=1)
    return ids


async def statuses(s: Services, order_ids: list[int]) -> dict[str, str]:
    found: dict[str, str] = {}
    for order_id in order_ids:
        for record in await outbox_of(s, order_id):
            found[record.id] = record.status
    return found


async def test_two_relays_running_at_once_run_each_command_once(postgres_url: str) -> None:
    async with rig(postgres_url) as r:
        order_ids = list(range(5000, 5030))
        ids = await add_commands(r.worker, r.clock, order_ids)
        ran: list[tuple[str, str]] = []

        def runner(name: str) -> Callable[[OutboxRecord], Awaitable[None]]:
            async def run(record: OutboxRecord) -> None:
                ran.append((name, record.id))
                await asyncio.sleep(0.01)

            return run

        relays = [
            OutboxRelay(s.payments.uow, runner(name), r.subscriber, r.clock)
            for name, s in (("worker", r.worker), ("web", r.web))
        ]
        reports = await bounded(*[relay.run_until_idle(limit=4) for relay in relays])

        assert Counter(record_id for _, record_id in ran) == Counter(ids)
        assert {name for name, _ in ran} == {"worker", "web"}  # both really took part
        assert sum(report.done for report in reports) == len(ids)
        assert set((await statuses(r.worker, order_ids)).values()) == {"done"}


# --------------------------------------------------------------------------- killed relay


class StallingCalendar(FakeCalendar):
    """The events service: confirming one order's tickets never returns the first time
    (the relay's process is killed while it waits)."""

    def __init__(self, stall_on: int) -> None:
        super().__init__()
        self.stall_on = stall_on
        self.stalled = asyncio.Event()

    async def confirm_tickets_for_order(self, order_id: int) -> None:
        if order_id == self.stall_on and not self.stalled.is_set():
            self.stalled.set()
            await asyncio.Event().wait()
        await super().confirm_tickets_for_order(order_id)


async def test_a_relay_killed_mid_batch_loses_no_command(postgres_url: str) -> None:
    order_ids = list(range(6000, 6006))
    stuck = order_ids[2]
    async with rig(postgres_url, calendar=StallingCalendar(stuck)) as r:
        ids = await add_commands(r.worker, r.clock, order_ids)
        calendar = r.calendar
        assert isinstance(calendar, StallingCalendar)

        killed = asyncio.create_task(r.worker.relay.run_once(limit=10))
        await asyncio.wait_for(calendar.stalled.wait(), BOUND)
        killed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await killed

        records = {rec.order_id: rec for i in order_ids for rec in await outbox_of(r.web, i)}
        assert [records[i].status for i in order_ids] == ["done"] * 2 + ["pending"] * 4
        assert all(records[i].attempts == 1 for i in order_ids)  # claimed, and leased
        # Another relay leaves them to the dead one until its lease runs out...
        assert (await r.web.relay.run_once()).ran == 0
        r.clock.current += r.web.relay.lease + timedelta(seconds=1)
        # ...then runs every remaining command.
        report = await asyncio.wait_for(r.web.relay.run_until_idle(), BOUND)

        assert report.done == 4
        assert await statuses(r.web, order_ids) == dict.fromkeys(ids, "done")
        assert {arg for name, arg in calendar.calls if name == "confirm_tickets"} == set(order_ids)
        for order_id in order_ids:
            # The interrupted command ran twice; confirming is idempotent at the events
            # service, and every order's bookings and tickets are confirmed.
            assert calendar.count("confirm_entries", order_id) == (2 if order_id == stuck else 1)
            assert calendar.count("confirm_tickets", order_id) == 1


# --------------------------------------------------------------------------- revival


async def test_thirty_webhooks_for_an_expired_then_paid_order_revive_it_once(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        alice = buyer(60)
        order_id, checkout_id = await checked_out(r, alice)
        attempt = (await r.web.payments.get(order_id)).attempts[0]
        r.clock.current = attempt.valid_until + EXPIRY_GRACE + timedelta(minutes=1)
        report = await r.worker.payments.reconcile(every=timedelta(0))
        assert report.expired == 1
        await r.worker.relay.run_until_idle()
        assert claims_state(r.calendar, order_id) == "released"
        # A payment SumUp was already processing completes after the close.
        r.clock.advance(minutes=1)
        r.provider.settle(checkout_id, "PAID")
        r.provider.get_delay = 0.01
        r.calendar.calls.clear()

        hooks = await bounded(*[webhook(r, order_id, checkout_id) for _ in range(30)])

        assert hooks == [204] * 30
        order = await r.web.payments.get(order_id)
        assert order.status == OrderStatus.PAID and not order.needs_refund
        kinds = await outbox_types(r.web, order_id)
        assert kinds["rose:OrderPaid"] == 1
        assert kinds[CommandType.RECLAIM_CLAIMS] == 1
        assert kinds[CommandType.CONFIRM_CLAIMS] == 0
        paid = [rec for rec in await outbox_of(r.web, order_id) if rec.type == "rose:OrderPaid"]
        assert paid[0].payload.get("late") is True
        await r.worker.relay.run_until_idle()
        assert r.calendar.count("claim_entries", order_id) == 1
        assert r.calendar.count("confirm_entries", order_id) == 1
        assert claims_state(r.calendar, order_id) == "confirmed"
        assert (await r.web.cart.cart(alice)).count == 0


# --------------------------------------------------------------------------- pay again, late


async def pay_again_as_the_window_ends(r: Rig, who: CartIdentity, closing: float) -> str:
    """The payer presses "pay again" a second before the order's window and grace end; while
    SumUp closes the old checkout (taking ``closing`` seconds) the time is up and the
    reconciler comes round. SumUp is slow to make the new checkout. Returns the outcome."""
    order_id, old = await failed_once(r, who)
    attempt = (await r.web.payments.get(order_id)).attempts[0]
    r.clock.current = attempt.valid_until + EXPIRY_GRACE - timedelta(seconds=1)
    window_over = asyncio.Event()

    def the_window_ends_while_closing(cid: str) -> None:
        if cid == old and not window_over.is_set():
            r.clock.advance(seconds=2)
            window_over.set()

    r.provider.before_deactivate = the_window_ends_while_closing
    r.provider.get_delay = 0.005
    r.provider.deactivate_delay = closing
    r.provider.create_delay = 0.1

    async def pay_again() -> str:
        try:
            return (await r.web.orders.pay_again(who, order_id)).payment_url
        except OrderNotPayable:
            return "not payable"

    async def reconciler() -> None:
        await window_over.wait()
        await r.worker.payments.reconcile(every=timedelta(0))

    try:
        url, _ = await bounded(pay_again(), reconciler())
    finally:
        r.provider.before_deactivate = None
        r.provider.get_delay = r.provider.deactivate_delay = r.provider.create_delay = 0
    await r.worker.relay.run_until_idle()

    order = await r.web.payments.get(order_id)
    live = r.provider.live_for(order_id)
    if order.status == OrderStatus.EXPIRED:
        # Given up: nothing it made can still take money; the loaves are back in the cart.
        assert live == []
        assert not any(a.is_open for a in order.attempts)
        assert claims_state(r.calendar, order_id) == "released"
        assert (await r.web.cart.cart(who)).count == 2
    else:
        assert order.status == OrderStatus.PENDING
        latest = order.latest_attempt
        assert latest is not None
        assert live == [latest.provider_checkout_id]
        assert url == latest.hosted_url
    return order.status.value


async def test_pay_again_as_the_window_ends_racing_the_reconciler_leaves_no_stray_checkout(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        outcomes = Counter(
            [
                await pay_again_as_the_window_ends(r, buyer(70 + n), closing)
                for n, closing in enumerate([0.0, 0.02, 0.05, 0.1, 0.2])
            ]
        )
        # The race that matters happened: the order was given up while its new checkout
        # was being made.
        assert outcomes["expired"] >= 1, outcomes


# --------------------------------------------------------------------------- release, reclaim


class SlowCalendar(FakeCalendar):
    """The events service, slow to release an order's claims."""

    def __init__(self) -> None:
        super().__init__()
        self.release_delay = 0.0
        self.releasing = asyncio.Event()
        #: When set, a release waits for it to be opened before it answers.
        self.release_gate: asyncio.Event | None = None

    async def release_for_order(self, order_id: int) -> None:
        self.releasing.set()
        if self.release_delay:
            await asyncio.sleep(self.release_delay)
        if self.release_gate is not None:
            await self.release_gate.wait()
        await super().release_for_order(order_id)


async def expired_then_paid(r: Rig, who: CartIdentity) -> int:
    """An order the reconciler gave up, then revived by a payment SumUp was still
    processing; nothing has run its commands yet."""
    order_id, checkout_id = await checked_out(r, who)
    attempt = (await r.web.payments.get(order_id)).attempts[0]
    r.clock.current = attempt.valid_until + EXPIRY_GRACE + timedelta(minutes=1)
    assert (await r.worker.payments.reconcile(every=timedelta(0))).expired == 1
    return order_id


async def revive(r: Rig, order_id: int) -> None:
    [attempt] = (await r.web.payments.get(order_id)).attempts
    assert attempt.provider_checkout_id is not None
    r.provider.settle(attempt.provider_checkout_id, "PAID")
    assert await webhook(r, order_id, attempt.provider_checkout_id) == 204
    assert (await r.web.payments.get(order_id)).status == OrderStatus.PAID


async def test_two_relays_never_leave_a_revived_orders_claims_released(
    postgres_url: str,
) -> None:
    calendar = SlowCalendar()
    async with rig(postgres_url, calendar=calendar) as r:
        alice = buyer(80)
        order_id = await expired_then_paid(r, alice)
        r.clock.advance(seconds=1)
        await revive(r, order_id)
        kinds = await outbox_types(r.web, order_id)
        assert (kinds[CommandType.RELEASE_CLAIMS], kinds[CommandType.RECLAIM_CLAIMS]) == (1, 1)
        # Two workers' relays take one record at a time; the events service is slow to
        # release, so the release is still running when the other relay reaches the reclaim.
        calendar.release_delay = 0.1
        await bounded(r.worker.relay.run_until_idle(limit=1), r.web.relay.run_until_idle(limit=1))
        calendar.release_delay = 0
        await r.worker.relay.run_until_idle()  # anything retried

        r.clock.advance(minutes=5)
        await r.worker.relay.run_until_idle()
        assert set((await statuses(r.worker, [order_id])).values()) == {"done"}
        # Paid: the bookings are the payer's, not back in anyone's cart.
        assert claims_state(calendar, order_id) == "confirmed", calendar.calls
        assert (await r.web.payments.get(order_id)).status == OrderStatus.PAID


async def test_a_late_payment_found_while_the_release_is_running_keeps_its_claims(
    postgres_url: str,
) -> None:
    calendar = SlowCalendar()
    async with rig(postgres_url, calendar=calendar) as r:
        alice = buyer(82)
        order_id = await expired_then_paid(r, alice)
        # One worker's relay is giving the claims back (the events service is slow)...
        calendar.release_gate = asyncio.Event()
        releasing = asyncio.create_task(r.worker.relay.run_until_idle())
        await asyncio.wait_for(calendar.releasing.wait(), BOUND)
        # ...when the late payment is found and another worker's relay takes the claims
        # again, before that release has returned.
        r.clock.advance(seconds=1)
        await revive(r, order_id)
        await asyncio.wait_for(r.web.relay.run_until_idle(), BOUND)
        assert not releasing.done()
        calendar.release_gate.set()
        await asyncio.wait_for(releasing, BOUND)
        await r.worker.relay.run_until_idle()

        assert set((await statuses(r.worker, [order_id])).values()) == {"done"}
        assert claims_state(calendar, order_id) == "confirmed", calendar.calls


async def test_a_release_retried_after_a_late_payment_never_undoes_its_reclaim(
    postgres_url: str,
) -> None:
    async with rig(postgres_url) as r:
        alice = buyer(81)
        order_id = await expired_then_paid(r, alice)
        # The events service is down when the relay first tries to release the claims...
        r.calendar.down = True
        await r.worker.relay.run_until_idle()
        r.calendar.down = False
        # ...and the late payment is found a second later, before the release's retry. A
        # busy relay takes one record at a time, the soonest due first: the reclaim, then
        # the retried release.
        r.clock.advance(seconds=1)
        await revive(r, order_id)
        r.clock.advance(minutes=5)
        await r.worker.relay.run_until_idle(limit=1)
        r.clock.advance(minutes=5)
        await r.worker.relay.run_until_idle()

        assert set((await statuses(r.worker, [order_id])).values()) == {"done"}
        assert claims_state(r.calendar, order_id) == "confirmed", r.calendar.calls
