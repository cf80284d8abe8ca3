"""Taking a paid order out of the cart while the visitor changes the same line, on
PostgreSQL with two real connections."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rose_cart.adapters.db.engine import make_engine
from rose_cart.adapters.db.uow import SqlUnitOfWorkFactory
from rose_cart.domain.identity import CartIdentity

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = CartIdentity(user_id=7)


async def test_subtracting_waits_for_a_concurrent_change_and_subtracts_from_it(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        async with uow() as tx:
            await tx.carts.add_quantity(ALICE, 1, 2, 99, NOW)
            await tx.carts.add_quantity(ALICE, 2, 1, 99, NOW)
            lines = {item.product_id: item.id for item in await tx.carts.live_items(ALICE)}
        subtracted = 0
        async with uow() as tab:
            # Another tab raises the sourdough to 5 and has not committed yet.
            await tab.carts.set_quantity(ALICE, 1, 5, NOW)

            async def pay() -> None:
                nonlocal subtracted
                async with uow() as tx:
                    subtracted = await tx.carts.subtract_ordered(
                        [(lines[1], 2), (lines[2], 1)], 99, NOW
                    )

            paying = asyncio.create_task(pay())
            await asyncio.sleep(0.2)
            assert not paying.done()  # waits for the tab's row lock
        await asyncio.wait_for(paying, 10)
        assert subtracted == 2
        async with uow() as tx:
            left = {item.product_id: item.quantity for item in await tx.carts.live_items(ALICE)}
        assert left == {1: 3}
    finally:
        await engine.dispose()
