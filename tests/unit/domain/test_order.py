"""The Order aggregate's rules, with no database: one live attempt, what the provider's
answers do, revive-or-refund, expiry closes checkouts first, refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rose_cart.domain.errors import (
    AttemptStillOpen,
    CheckoutsStillOpen,
    NotRefundable,
    OrderNotPayable,
    RefundExceedsPayment,
)
from rose_cart.domain.order import (
    AccountRef,
    AttemptStatus,
    Attention,
    CheckoutAnswer,
    CommandType,
    Order,
    OrderStatus,
    attempt_status_from_provider,
    checkout_reference,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SITE = AccountRef("site", "MSANDBOX", "token")
PAID = CheckoutAnswer(AttemptStatus.PAID, "txn-1")


def order(status: OrderStatus = OrderStatus.CLAIMING) -> Order:
    return Order(
        id=42,
        status=status,
        user_id=7,
        session_id=None,
        page_id=101,
        page_slug="bakery",
        page_title="Bakery",
        currency="GBP",
        total=Decimal("9.00"),
        webhook_token="t",
        idempotency_key=None,
        cart_fingerprint=None,
        created_at=NOW,
        updated_at=NOW,
    )


def payable_with_checkout(minutes: int = 30) -> Order:
    o = order()
    o.claims_held(NOW)
    attempt = o.start_attempt(
        now=NOW, valid_for=timedelta(minutes=minutes), account=SITE, prefix="bake", nonce="ab12"
    )
    attempt.id = 1
    o.checkout_created(1, "chk-1", "https://pay/1", NOW)
    return o


def command_types(effects: object) -> list[CommandType]:
    return [c.type for c in effects.commands]  # type: ignore[attr-defined]


def test_an_order_is_not_payable_until_its_claims_are_held() -> None:
    o = order()
    with pytest.raises(OrderNotPayable):
        o.start_attempt(
            now=NOW, valid_for=timedelta(minutes=30), account=SITE, prefix="", nonce="x"
        )
    o.claims_held(NOW)
    assert o.status == OrderStatus.PENDING


def test_one_live_attempt_at_a_time() -> None:
    o = payable_with_checkout()
    with pytest.raises(AttemptStillOpen):
        o.start_attempt(
            now=NOW, valid_for=timedelta(minutes=30), account=SITE, prefix="", nonce="y"
        )
    o.checkout_closed(1, NOW)
    second = o.start_attempt(
        now=NOW, valid_for=timedelta(minutes=30), account=SITE, prefix="bake", nonce="cd34"
    )
    assert second.number == 2 and second.reference != o.attempt(1).reference


def test_the_attempt_records_its_account_and_end() -> None:
    o = payable_with_checkout(minutes=20)
    attempt = o.attempt(1)
    assert (attempt.account, attempt.merchant_code, attempt.key_token) == (
        "site",
        "MSANDBOX",
        "token",
    )
    assert attempt.valid_until == NOW + timedelta(minutes=20)
    assert o.expires_at() == NOW + timedelta(minutes=25)


def test_paid_once_confirms_claims_and_says_so_once() -> None:
    o = payable_with_checkout()
    effects = o.apply_checkout(1, PAID, NOW)
    assert o.status == OrderStatus.PAID and o.paid_at == NOW
    assert command_types(effects) == [CommandType.CONFIRM_CLAIMS]
    assert [a.type for a in effects.activities] == ["rose:OrderPaid"]
    assert not o.apply_checkout(1, PAID, NOW)  # heard again: nothing more


def test_failed_is_not_final() -> None:
    o = payable_with_checkout()
    o.apply_checkout(1, CheckoutAnswer(AttemptStatus.FAILED), NOW)
    assert o.status == OrderStatus.FAILED and o.attempt(1).is_open
    o.apply_checkout(1, PAID, NOW)
    assert o.status == OrderStatus.PAID


def test_a_closed_checkout_is_remembered_as_declined_or_expired() -> None:
    declined = payable_with_checkout()
    declined.apply_checkout(1, CheckoutAnswer(AttemptStatus.FAILED), NOW)
    declined.checkout_closed(1, NOW)
    assert declined.attempt(1).status == AttemptStatus.DECLINED
    assert not declined.attempt(1).is_open
    # SumUp calling a declined checkout expired later changes nothing the payer reads.
    declined.apply_checkout(1, CheckoutAnswer(AttemptStatus.EXPIRED), NOW)
    assert declined.attempt(1).status == AttemptStatus.DECLINED

    left = payable_with_checkout()
    left.checkout_closed(1, NOW)
    assert left.attempt(1).status == AttemptStatus.EXPIRED
    ran_out = payable_with_checkout()
    ran_out.apply_checkout(1, CheckoutAnswer(AttemptStatus.FAILED), NOW)
    ran_out.apply_checkout(1, CheckoutAnswer(AttemptStatus.EXPIRED), NOW)
    assert ran_out.attempt(1).status == AttemptStatus.DECLINED


def test_a_checkout_that_does_not_match_is_never_a_payment() -> None:
    o = payable_with_checkout()
    effects = o.apply_checkout(1, CheckoutAnswer(AttemptStatus.PAID, "x", matches=False), NOW)
    assert not effects and o.status == OrderStatus.PENDING
    assert o.attention == Attention.MISMATCHED_CHECKOUT


def test_expiry_closes_checkouts_first() -> None:
    o = payable_with_checkout()
    with pytest.raises(CheckoutsStillOpen):
        o.expire(NOW)
    assert o.status == OrderStatus.PENDING
    o.checkout_closed(1, NOW)
    effects = o.expire(NOW)
    assert o.status == OrderStatus.EXPIRED
    assert command_types(effects) == [CommandType.RELEASE_CLAIMS]
    assert [a.type for a in effects.activities] == ["rose:OrderExpired"]


def test_an_unreadable_checkout_lets_the_order_expire_flagged_and_watched() -> None:
    o = payable_with_checkout()
    o.checkout_unreadable(1, NOW)
    o.expire(NOW + timedelta(minutes=40))
    assert o.status == OrderStatus.EXPIRED
    assert o.attention == Attention.UNREADABLE_CHECKOUT
    assert o.attempt(1).is_open  # still asked about: a late payment is found


def test_a_late_payment_revives_the_order_and_takes_its_claims_again() -> None:
    o = payable_with_checkout()
    o.checkout_unreadable(1, NOW)
    o.expire(NOW)
    effects = o.apply_checkout(1, PAID, NOW)
    assert o.status == OrderStatus.PAID and not o.needs_refund
    assert command_types(effects) == [CommandType.RECLAIM_CLAIMS]
    assert effects.activities[0].payload["late"] is True


def test_claims_lost_after_a_late_payment_flags_a_refund() -> None:
    o = payable_with_checkout()
    o.checkout_unreadable(1, NOW)
    o.cancel("sold_out", NOW)
    o.apply_checkout(1, PAID, NOW)
    o.claims_lost(NOW)
    assert o.status == OrderStatus.PAID and o.needs_refund
    assert o.attention == Attention.CLAIMS_LOST


def test_paid_through_two_checkouts_flags_a_refund_and_pays_once() -> None:
    o = payable_with_checkout()
    o.apply_checkout(1, CheckoutAnswer(AttemptStatus.FAILED), NOW)
    o.checkout_closed(1, NOW)
    second = o.start_attempt(
        now=NOW, valid_for=timedelta(minutes=30), account=SITE, prefix="b", nonce="z"
    )
    second.id = 2
    o.checkout_created(2, "chk-2", "https://pay/2", NOW)
    first_paid = o.apply_checkout(2, PAID, NOW)
    second_paid = o.apply_checkout(1, CheckoutAnswer(AttemptStatus.PAID, "txn-0"), NOW)
    assert len(first_paid.activities) == 1 and not second_paid.activities
    assert o.needs_refund and o.attention == Attention.PAID_TWICE
    assert o.paid_total == Decimal("18.00")


def test_a_second_checkout_for_one_attempt_is_closed() -> None:
    o = payable_with_checkout()
    effects = o.checkout_created(1, "chk-other", "https://pay/x", NOW)
    assert command_types(effects) == [CommandType.CLOSE_CHECKOUT]
    assert effects.commands[0].payload["checkout_id"] == "chk-other"


def test_a_checkout_made_for_a_closed_attempt_is_closed_again() -> None:
    o = order()
    o.claims_held(NOW)
    attempt = o.start_attempt(
        now=NOW, valid_for=timedelta(minutes=30), account=SITE, prefix="", nonce="n"
    )
    attempt.id = 1
    o.abandon_unsent_attempts(NOW)  # pay again in another tab closed it
    effects = o.checkout_created(1, "chk-late", "https://pay/late", NOW)
    assert command_types(effects) == [CommandType.CLOSE_CHECKOUT]
    assert not o.attempt(1).is_open


def test_refunds_full_and_partial() -> None:
    o = payable_with_checkout()
    with pytest.raises(NotRefundable):
        o.check_refund(None)
    o.apply_checkout(1, PAID, NOW)
    assert o.check_refund(Decimal("4")) == Decimal("4.00")
    with pytest.raises(RefundExceedsPayment):
        o.check_refund(Decimal("9.01"))
    with pytest.raises(RefundExceedsPayment):
        o.check_refund(Decimal("5"), reserved=Decimal("4.01"))
    effects = o.refunded_by(Decimal("4.00"), NOW)
    assert o.status == OrderStatus.PARTIALLY_REFUNDED and o.refunded == Decimal("4.00")
    assert effects.activities[0].type == "rose:OrderRefunded"
    assert o.check_refund(None) == Decimal("5.00")
    o.refunded_by(Decimal("5.00"), NOW)
    assert o.status == OrderStatus.REFUNDED
    with pytest.raises(RefundExceedsPayment):
        o.check_refund(None)


def test_reference_is_unique_for_ever_and_at_most_64() -> None:
    ref = checkout_reference("x" * 100, 123456, 7, "a1b2c3d4e5")
    assert len(ref) <= 64 and ref.endswith("123456-7-a1b2c3d4e5")
    assert checkout_reference("bake ry!", 1, 2, "ff") == "bakery-1-2-ff"
    assert checkout_reference("", 1, 2, "ff") == "1-2-ff"
    # The same order and attempt numbers after a database restore get another reference.
    assert checkout_reference("rose", 1, 1, "aa") != checkout_reference("rose", 1, 1, "bb")


def test_unknown_provider_status_is_pending() -> None:
    assert attempt_status_from_provider("PAID") is AttemptStatus.PAID
    assert attempt_status_from_provider("SOMETHING_NEW") is AttemptStatus.PENDING
    assert attempt_status_from_provider(None) is AttemptStatus.PENDING


def test_a_rule_applied_to_a_copy_leaves_the_order_as_it_was() -> None:
    o = payable_with_checkout()
    copy = o.copy()
    copy.apply_checkout(1, PAID, NOW)
    assert copy.status == OrderStatus.PAID and copy.attempts[0].status == AttemptStatus.PAID
    assert o.status == OrderStatus.PENDING and o.attempts[0].status == AttemptStatus.PENDING
    assert o == payable_with_checkout()
