"""A request cancelled at any moment of a transaction (the visitor went away) must not
leave anything held: the next transactions still go through."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from rose_cart.adapters.db.engine import make_engine
from rose_cart.adapters.db.uow import SqlUnitOfWorkFactory
from rose_cart.domain.identity import CartIdentity

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_cancelled_transactions_release_everything(database_url: str) -> None:
    engine = make_engine(database_url)
    uow = SqlUnitOfWorkFactory(engine)
    rng = random.Random(7)
    try:

        async def writer(n: int, inside: asyncio.Event) -> None:
            who = CartIdentity(session_id=f"leaver-{n}")
            async with uow() as tx:
                inside.set()
                await tx.carts.add_quantity(who, 1 + n % 5, 1, 99, NOW)
                await tx.carts.live_items(who)

        # Cancel writers at every moment of their transaction, including while they commit
        # or roll back (once they hold a connection: a cancelled connect is the driver's).
        async def cancel_many() -> None:
            for _ in range(40):
                await cancel_some()

        async def cancel_some() -> None:
            inside = [asyncio.Event() for _ in range(4)]
            tasks = [asyncio.create_task(writer(n, inside[n])) for n in range(4)]
            await asyncio.wait_for(inside[0].wait(), 10)
            await asyncio.sleep(rng.random() * 0.004)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        # Stuck connections used to hang here for ever; fail instead.
        await asyncio.wait_for(cancel_many(), 60)

        async def write_and_read() -> list[int]:
            who = CartIdentity(session_id="stayer")
            async with uow() as tx:
                await tx.carts.add_quantity(who, 42, 2, 99, NOW)
            async with uow() as tx:
                return [i.product_id for i in await tx.carts.live_items(who)]

        assert await asyncio.wait_for(write_and_read(), 10) == [42]
    finally:
        await asyncio.wait_for(engine.dispose(), 30)
