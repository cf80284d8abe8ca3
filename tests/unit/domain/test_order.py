from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rose_cart.domain.order import (
    AttemptStatus,
    OrderStatus,
    attempt_status_from_provider,
    checkout_reference,
    is_stale,
    order_sources,
)


def test_paid_only_from_payable_states() -> None:
    assert order_sources(OrderStatus.PAID) == {OrderStatus.PENDING, OrderStatus.FAILED}
    assert OrderStatus.EXPIRED not in order_sources(OrderStatus.PAID)
    assert OrderStatus.PAID not in order_sources(OrderStatus.EXPIRED)


def test_reference_is_at_most_64_and_unique_per_attempt() -> None:
    ref = checkout_reference("x" * 100, 123456, 7)
    assert len(ref) <= 64 and ref.endswith("123456-7")
    assert checkout_reference("bake ry!", 1, 2) == "bakery-1-2"
    assert checkout_reference("", 1, 2) == "1-2"


def test_unknown_provider_status_is_pending() -> None:
    assert attempt_status_from_provider("PAID") is AttemptStatus.PAID
    assert attempt_status_from_provider("SOMETHING_NEW") is AttemptStatus.PENDING
    assert attempt_status_from_provider(None) is AttemptStatus.PENDING


def test_staleness_after_session_and_grace() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert not is_stale(start, start + timedelta(minutes=34))
    assert is_stale(start, start + timedelta(minutes=35))
