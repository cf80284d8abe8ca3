from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from rose_cart.bootstrap import Overrides, build_services
from rose_cart.config import Settings
from rose_cart.domain.identity import CartIdentity
from rose_cart.services.checkout import CheckoutResult
from rose_cart.services.container import Services
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
    product,
)

CATALOG = [
    product(1, "4.50", market=1, title="Sourdough", max_per_order=10),
    product(2, "3.20", market=2, title="Eggs", max_per_order=5),
    product(3, "8.00", market=3, title="Tote bag"),
    product(4, "2.00", market=1, title="Hot cross buns", available=False),
    product(5, "7.00", market=2, currency="EUR", title="Imported jam"),
]


@dataclass
class Harness:
    services: Services
    market: FakeMarket
    calendar: FakeCalendar
    cache: FakeCache
    clock: FakeClock
    payments: FakePaymentProvider
    subscriber: FakeSubscriber
    database_url: str

    async def relay(self) -> None:
        """Run the outbox until nothing is due, as the worker does."""
        await self.services.relay.run_until_idle()


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    market, calendar, cache, clock = FakeMarket(CATALOG), FakeCalendar(), FakeCache(), FakeClock()
    payments, subscriber = FakePaymentProvider(), FakeSubscriber()
    VIOLATIONS.clear()
    services = build_services(
        Settings(database_url=database_url, migrate_on_start=False, admin_users="admin,7"),
        Overrides(
            market=market,
            blog=FakeBlog(),
            calendar=calendar,
            cache=cache,
            clock=clock,
            payments=payments,
            subscriber=subscriber,
            wrap_uow=GuardedUnitOfWorkFactory,
        ),
    )
    yield Harness(services, market, calendar, cache, clock, payments, subscriber, database_url)
    await services.aclose()
    assert VIOLATIONS == [], f"remote calls inside a transaction: {VIOLATIONS}"


ALICE = CartIdentity(user_id=7)


async def checked_out(h: Harness, qty: int = 2) -> CheckoutResult:
    """Alice checks out ``qty`` sourdough from the bakery."""
    await h.services.cart.add(ALICE, 1, qty)
    return await h.services.checkout.checkout(ALICE, "bakery")


def checkout_id(result: CheckoutResult) -> str:
    return result.payment_url.rsplit("/", 1)[-1]


async def outbox(h: Harness, type_: str, order_id: int) -> int:
    """How many ``type_`` records the order has in the outbox."""
    async with h.services.cart.uow() as tx:
        return await tx.outbox.count(type_, str(order_id))
