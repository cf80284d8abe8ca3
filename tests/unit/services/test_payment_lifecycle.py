"""Money across time and failure: expiry, late payments, a restored database, changed keys,
unreadable checkouts, failed claims, an events service that is down, pay again.

Each test is named for what a payer or the co-op would notice. Every service call here runs
through the guarded unit of work, so a remote call made inside a transaction fails it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from rose_cart.adapters.db.repositories import SqlOrderRepository
from rose_cart.domain.errors import (
    OrderNotPayable,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    SiblingUnavailable,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import AttemptStatus, Attention, Order, OrderStatus
from rose_cart.ports import AdminOrderFilter, CheckoutState, ConcurrentChange, PaymentCredentials
from tests.fakes import FakePaymentProvider
from tests.unit.services.conftest import ALICE, Harness, checked_out, checkout_id, outbox

BOB = CartIdentity(user_id=8)

PAST_WINDOW = {"minutes": 36}  # 30-minute checkout + 5 minutes' grace, and a bit


async def webhook(h: Harness, order_id: int, cid: str) -> None:
    order = await h.services.payments.get(order_id)
    body = {"event_type": "CHECKOUT_STATUS_CHANGED", "id": cid}
    assert await h.services.orders.handle_webhook(order_id, order.webhook_token, body)


# --------------------------------------------------------------------------- 1. expiry


async def test_checkouts_end_when_their_attempt_ends(harness: Harness) -> None:
    result = await checked_out(harness)
    request = harness.payments.checkouts[checkout_id(result)]["request"]
    assert request.valid_until == harness.clock.now() + timedelta(minutes=30)


async def test_expiry_closes_the_checkout_before_giving_the_order_up(harness: Harness) -> None:
    result = await checked_out(harness)
    harness.clock.advance(**PAST_WINDOW)
    await harness.services.payments.reconcile()
    order = await harness.services.payments.get(result.order.id)
    assert order.status == OrderStatus.EXPIRED
    assert harness.payments.live() == []  # nobody can pay the old link any more
    assert harness.payments.checkouts[checkout_id(result)]["status"] == "EXPIRED"


async def test_a_payment_made_while_the_order_expires_wins(harness: Harness) -> None:
    class PaidAtTheLastSecond(FakePaymentProvider):
        async def deactivate_checkout(
            self, provider_checkout_id: str, credentials: PaymentCredentials
        ) -> CheckoutState:
            self.settle(provider_checkout_id, "PAID")  # the payer pressed Pay just now
            return await super().deactivate_checkout(provider_checkout_id, credentials)

    late = PaidAtTheLastSecond()
    late.checkouts, late.by_reference = harness.payments.checkouts, harness.payments.by_reference
    harness.services.payments.provider = late
    result = await checked_out(harness)
    harness.clock.advance(**PAST_WINDOW)
    await harness.services.payments.reconcile()
    order = await harness.services.payments.get(result.order.id)
    assert order.status == OrderStatus.PAID and not order.needs_refund
    assert await outbox(harness, "rose:OrderExpired", order.id) == 0
    await harness.relay()
    assert harness.calendar.count("confirm_entries", order.id) == 1
    assert harness.calendar.count("release", order.id) == 0


@pytest.mark.parametrize("ending", ["expired", "cancelled"])
async def test_a_payment_for_an_ended_order_revives_it(harness: Harness, ending: str) -> None:
    result = await checked_out(harness)
    order_id = result.order.id
    if ending == "expired":
        harness.clock.advance(**PAST_WINDOW)
        await harness.services.payments.reconcile()
    else:
        await harness.services.payments.end(order_id, "changed_mind")
    await harness.relay()
    assert (await harness.services.payments.get(order_id)).status.value == ending
    assert harness.calendar.count("release", order_id) == 1
    # SumUp took the money anyway (a checkout closed too late): it is never ignored.
    harness.payments.settle(checkout_id(result), "PAID")
    await webhook(harness, order_id, checkout_id(result))
    order = await harness.services.payments.get(order_id)
    assert order.status == OrderStatus.PAID and not order.needs_refund
    assert await outbox(harness, "rose:OrderPaid", order_id) == 1
    await harness.relay()
    # What it had claimed is taken again, then confirmed.
    assert harness.calendar.count("claim_entries", order_id) == 2
    assert harness.calendar.count("confirm_entries", order_id) == 1
    assert (await harness.services.cart.cart(ALICE)).count == 0  # what was paid left the cart


async def test_a_late_payment_whose_places_are_gone_is_flagged_for_a_refund(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    harness.clock.advance(**PAST_WINDOW)
    await harness.services.payments.reconcile()
    await harness.relay()
    harness.calendar.sold_out = True  # the event sold out meanwhile
    harness.payments.settle(checkout_id(result), "PAID")
    await webhook(harness, result.order.id, checkout_id(result))
    await harness.relay()
    order = await harness.services.payments.get(result.order.id)
    assert order.status == OrderStatus.PAID
    assert order.needs_refund and order.attention == Attention.CLAIMS_LOST
    flagged = await harness.services.admin.list(_admin(), AdminOrderFilter(needs_attention=True))
    assert [o.id for o in flagged] == [order.id]


# --------------------------------------------------------------------------- 2. restore


async def _restore_to_empty(h: Harness) -> None:
    """What a restore from an old backup does to ids: they start again."""
    engine = h.services.cart.uow.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(
                text(
                    "TRUNCATE cart_items, order_items, refunds, payment_attempts, orders, "
                    "outbox RESTART IDENTITY CASCADE"
                )
            )
        else:
            for table in ("refunds", "order_items", "payment_attempts", "orders", "outbox"):
                await conn.execute(text(f"DELETE FROM {table}"))
            await conn.execute(text("DELETE FROM cart_items"))


async def test_after_a_restore_an_old_paid_checkout_is_never_taken_as_payment(
    harness: Harness,
) -> None:
    before = await checked_out(harness)
    harness.payments.settle(checkout_id(before), "PAID")
    await harness.services.payments.check_payment_status(before.order.id)
    await _restore_to_empty(harness)

    after = await checked_out(harness)
    assert after.order.id == before.order.id  # the same id again
    assert checkout_id(after) != checkout_id(before)  # but its own checkout
    order = await harness.services.payments.check_payment_status(after.order.id)
    assert order.status == OrderStatus.PENDING


async def test_a_reference_that_is_taken_by_a_paid_checkout_is_refused(harness: Harness) -> None:
    harness.services.payments.nonce = lambda: "samepart"  # as if the random part repeated
    before = await checked_out(harness)
    harness.payments.settle(checkout_id(before), "PAID")
    await _restore_to_empty(harness)
    with pytest.raises(PaymentProviderRejected):
        await checked_out(harness)
    [order] = await harness.services.orders.list_for(ALICE)
    assert order.status == OrderStatus.PENDING and order.paid_at is None


# --------------------------------------------------------------------------- 3. accounts


async def _bakery_account(h: Harness, merchant: str, key: str) -> None:
    await h.services.page_configs.ensure(101, merchant_code=merchant, api_key=key)


async def test_checks_use_the_account_the_checkout_was_made_with(harness: Harness) -> None:
    await _bakery_account(harness, "MBAKERY", "sup_sk_bakery_1")
    result = await checked_out(harness)
    assert harness.payments.made_with(checkout_id(result)).merchant_code == "MBAKERY"
    # The seller moves to another SumUp account while the payer is paying.
    await _bakery_account(harness, "MNEWBAKERY", "sup_sk_bakery_2")
    harness.payments.settle(checkout_id(result), "PAID")
    order = await harness.services.payments.check_payment_status(result.order.id)
    assert order.status == OrderStatus.PAID


async def test_a_replaced_key_of_the_same_account_still_reaches_open_checkouts(
    harness: Harness,
) -> None:
    await _bakery_account(harness, "MBAKERY", "sup_sk_old")
    result = await checked_out(harness)
    await _bakery_account(harness, "MBAKERY", "sup_sk_new")
    harness.payments.revoked_keys.add("sup_sk_old")
    harness.payments.settle(checkout_id(result), "PAID")
    order = await harness.services.payments.check_payment_status(result.order.id)
    assert order.status == OrderStatus.PAID


async def test_an_unreadable_checkout_is_retried_then_expired_flagged_and_released(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    data = harness.payments.checkouts.pop(checkout_id(result))  # SumUp answers 404
    await harness.services.payments.reconcile(every=timedelta(seconds=20))
    calls = harness.payments.get_calls
    harness.clock.advance(seconds=21)
    await harness.services.payments.reconcile(every=timedelta(seconds=20))
    harness.clock.advance(seconds=21)  # backoff: the second miss waits 40 s
    await harness.services.payments.reconcile(every=timedelta(seconds=20))
    assert harness.payments.get_calls == calls + 1
    order = await harness.services.payments.get(result.order.id)
    assert order.status == OrderStatus.PENDING  # not given up before its window ends

    harness.clock.advance(**PAST_WINDOW)
    await harness.services.payments.reconcile(every=timedelta(seconds=20))
    order = await harness.services.payments.get(result.order.id)
    assert order.status == OrderStatus.EXPIRED
    assert order.attention == Attention.UNREADABLE_CHECKOUT
    await harness.relay()
    assert harness.calendar.count("release", order.id) == 1
    flagged = await harness.services.admin.list(_admin(), AdminOrderFilter(needs_attention=True))
    assert [o.id for o in flagged] == [order.id]

    # SumUp can read it again, and it was paid: the order is revived, not ignored.
    harness.payments.checkouts[checkout_id(result)] = data
    harness.payments.settle(checkout_id(result), "PAID")
    harness.clock.advance(hours=7)
    await harness.services.payments.reconcile(every=timedelta(seconds=20))
    assert (await harness.services.payments.get(order.id)).status == OrderStatus.PAID


# --------------------------------------------------------------------------- 4. claims


async def test_a_claim_failing_for_any_reason_cancels_the_order_and_keeps_the_cart(
    harness: Harness,
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)
    harness.calendar.down = True
    with pytest.raises(SiblingUnavailable):
        await harness.services.checkout.checkout(ALICE, "bakery", "claim-key-1")
    [order] = await harness.services.orders.list_for(ALICE)
    assert order.status == OrderStatus.CANCELLED
    assert harness.payments.create_calls == 0  # never payable
    assert (await harness.services.cart.cart(ALICE)).count == 2
    harness.calendar.down = False
    harness.clock.advance(minutes=1)
    await harness.relay()
    assert harness.calendar.count("release", order.id) == 1
    with pytest.raises(OrderNotPayable):  # the same form again says so, and nothing is taken
        await harness.services.checkout.checkout(ALICE, "bakery", "claim-key-1")
    fresh = await harness.services.checkout.checkout(ALICE, "bakery", "claim-key-2")
    assert fresh.order.status == OrderStatus.PENDING and fresh.order.id != order.id


async def order_left_claiming(h: Harness, key: str, fingerprint: str = "print") -> Order:
    """Alice's bakery order as a checkout that stopped before its claims leaves it."""
    checkout = h.services.checkout
    group = await checkout._group(ALICE, "bakery")
    return await checkout._create_order(ALICE, group, fingerprint, key)


async def test_an_order_left_half_claimed_is_claimed_on_retry_or_cancelled(
    harness: Harness,
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)
    checkout = harness.services.checkout
    stuck = await order_left_claiming(harness, "stuck-key-01")
    assert stuck.status == OrderStatus.CLAIMING
    assert (await harness.services.payments.reconcile()).checked == 1
    assert (await harness.services.payments.get(stuck.id)).status == OrderStatus.CLAIMING
    # The visitor submits the same form again: claims are taken, then payment starts.
    result = await checkout.checkout(ALICE, "bakery", "stuck-key-01")
    assert result.order.id == stuck.id and result.order.status == OrderStatus.PENDING
    assert harness.calendar.count("claim_entries", stuck.id) == 1

    other = await order_left_claiming(harness, "stuck-key-02", "print-2")
    harness.clock.advance(minutes=11)
    await harness.services.payments.reconcile()
    assert (await harness.services.payments.get(other.id)).status == OrderStatus.CANCELLED
    await harness.relay()
    assert harness.calendar.count("release", other.id) == 1


async def test_claims_that_come_back_after_the_order_was_cancelled_never_make_it_payable(
    harness: Harness,
) -> None:
    await harness.services.cart.add(ALICE, 1, 2)
    read = await order_left_claiming(harness, "late-key-01")
    # The events service is slow: the order is given up while its claims are on their way.
    harness.clock.advance(minutes=11)
    await harness.services.payments.reconcile()
    assert (await harness.services.payments.get(read.id)).status == OrderStatus.CANCELLED
    with pytest.raises(OrderNotPayable):
        await harness.services.payments.begin(read)  # the order as it was read, claiming
    assert harness.payments.create_calls == 0  # no payment link for a cancelled order
    order = await harness.services.payments.get(read.id)
    assert order.status == OrderStatus.CANCELLED and order.attempts == []


async def test_an_order_saved_in_one_statement_never_overwrites_a_newer_change(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    payments = harness.services.payments
    read = await payments.get(result.order.id)
    # The reconciler changes the order after this request read it.
    now = harness.clock.now()
    await payments.transact(read.id, lambda o: o.checkout_unreadable(o.attempts[0].id, now))
    newer = await payments.get(read.id)
    read.attempts[0].hosted_url = "https://pay.example/somewhere-else"
    async with harness.services.cart.uow(one_statement=True) as tx:
        try:
            saved: bool | None = await tx.orders.save_alone(read)
        except ConcurrentChange:
            saved = None
    # Refused on PostgreSQL; on SQLite a save is never one statement.
    assert saved is (None if harness.database_url.startswith("postgresql") else False)
    stored = await payments.get(read.id)
    assert stored.version == newer.version
    assert stored.attempts[0].hosted_url == newer.attempts[0].hosted_url


async def test_paying_again_leaves_the_next_checkouts_steps_one_statement_each(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_alone: list[bool] = []
    real = SqlOrderRepository.save_alone

    async def watched(self: SqlOrderRepository, order: Order) -> bool:
        saved = await real(self, order)
        saved_alone.append(saved)
        return saved

    monkeypatch.setattr(SqlOrderRepository, "save_alone", watched)
    first = await checked_out(harness)
    harness.payments.settle(checkout_id(first), "FAILED")
    await harness.services.payments.check_payment_status(first.order.id)
    # A second attempt: its steps save an order of two attempts, in a transaction.
    again = await harness.services.orders.pay_again(ALICE, first.order.id)
    assert len(again.order.attempts) == 2
    saved_alone.clear()
    # Another visitor's checkout afterwards: on PostgreSQL each of its payment steps is one
    # statement still. One order that could not be saved so must not turn it off for all.
    await harness.services.cart.add(BOB, 2, 1)
    later = await harness.services.checkout.checkout(BOB, "garden")
    assert later.order.status == OrderStatus.PENDING
    on_postgres = harness.database_url.startswith("postgresql")
    assert saved_alone == ([True, True] if on_postgres else [])


# --------------------------------------------------------------------------- 5. events down


async def test_a_payment_is_recorded_while_the_events_service_is_down(harness: Harness) -> None:
    result = await checked_out(harness)
    harness.calendar.down = True
    harness.payments.settle(checkout_id(result), "PAID")
    order = await harness.services.payments.check_payment_status(result.order.id)
    assert order.status == OrderStatus.PAID  # the money SumUp took is recorded at once
    await harness.relay()
    assert harness.calendar.count("confirm_entries", order.id) == 0
    harness.calendar.down = False
    harness.clock.advance(minutes=2)
    await harness.relay()
    assert harness.calendar.count("confirm_entries", order.id) == 1
    assert harness.calendar.count("confirm_tickets", order.id) == 1


# --------------------------------------------------------------------------- 6. pay again


async def test_pay_again_finds_a_payment_made_while_closing_and_charges_once(
    harness: Harness,
) -> None:
    class PaidWhileClosing(FakePaymentProvider):
        async def deactivate_checkout(
            self, provider_checkout_id: str, credentials: PaymentCredentials
        ) -> CheckoutState:
            self.settle(provider_checkout_id, "PAID")
            return await super().deactivate_checkout(provider_checkout_id, credentials)

    provider = PaidWhileClosing()
    harness.services.payments.provider = provider
    result = await checked_out(harness)
    provider.settle(checkout_id(result), "FAILED")
    await harness.services.payments.check_payment_status(result.order.id)
    start = await harness.services.orders.pay_again(ALICE, result.order.id)
    assert start.order.status == OrderStatus.PAID
    assert start.payment_url.endswith(f"/checkout/return/{result.order.id}/")
    assert provider.create_calls == 1  # no second checkout


async def test_pay_again_makes_no_new_checkout_while_the_old_one_cannot_be_closed(
    harness: Harness,
) -> None:
    result = await checked_out(harness)
    harness.payments.settle(checkout_id(result), "FAILED")
    harness.payments.fail_deactivate = PaymentProviderUnavailable()
    with pytest.raises(PaymentProviderUnavailable):
        await harness.services.orders.pay_again(ALICE, result.order.id)
    assert harness.payments.live() == [checkout_id(result)]
    order = await harness.services.payments.get(result.order.id)
    assert [a.status for a in order.attempts] == [AttemptStatus.FAILED]


async def test_two_tabs_paying_again_leave_one_live_checkout(harness: Harness) -> None:
    result = await checked_out(harness)
    harness.payments.settle(checkout_id(result), "FAILED")
    harness.payments.create_delay = 0.01
    starts = await asyncio.gather(
        harness.services.orders.pay_again(ALICE, result.order.id),
        harness.services.orders.pay_again(ALICE, result.order.id),
        return_exceptions=True,
    )
    urls = {s.payment_url for s in starts if not isinstance(s, BaseException)}
    assert len(harness.payments.live()) == 1
    assert urls == {f"https://pay.example/{harness.payments.live()[0]}"}


def _admin() -> object:
    from rose_cart.services.admin import Admin

    return Admin(7, "alice")


async def test_a_check_while_pay_again_closes_the_old_checkout_never_expires_the_order(
    harness: Harness,
) -> None:
    """The webhook or the reconciler asks about the order just after "pay again" closed its
    checkout, before the new attempt is stored: the order must stay payable."""

    class CheckWhileClosing(FakePaymentProvider):
        async def deactivate_checkout(
            self, provider_checkout_id: str, credentials: PaymentCredentials
        ) -> CheckoutState:
            state = await super().deactivate_checkout(provider_checkout_id, credentials)
            await harness.services.payments.check_payment_status(order_id)
            return state

    provider = CheckWhileClosing()
    harness.services.payments.provider = provider
    result = await checked_out(harness)
    order_id = result.order.id
    provider.settle(checkout_id(result), "FAILED")
    start = await harness.services.orders.pay_again(ALICE, order_id)
    assert start.order.status == OrderStatus.PENDING
    assert provider.live() == [start.payment_url.rsplit("/", 1)[-1]]
