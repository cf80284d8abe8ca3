"""Single statements on PostgreSQL run on connections kept for them: no new sessions, never
two statements on one connection at once, and a connection the server ended is replaced
rather than handed to a visitor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from rose_cart.adapters.db.engine import make_engine, open_pool
from rose_cart.adapters.db.tables import orders
from rose_cart.adapters.db.uow import SqlUnitOfWorkFactory
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.order import Order
from rose_cart.ports import NewOrderItem

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 1, 1, tzinfo=UTC)


Made = Callable[..., SqlUnitOfWorkFactory]


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(postgres_url, pool_size=6)
    await open_pool(engine)
    yield engine
    await asyncio.wait_for(engine.dispose(), 30)


@pytest.fixture
async def kept(engine: AsyncEngine) -> AsyncIterator[Made]:
    """Units of work with kept connections (three unless said), given back at the end."""
    made: list[SqlUnitOfWorkFactory] = []

    def make(ping_after: float = 10.0, size: int = 3) -> SqlUnitOfWorkFactory:
        made.append(SqlUnitOfWorkFactory(engine, hot_connections=size, ping_after=ping_after))
        return made[-1]

    yield make
    for uow in made:
        await uow.aclose()


async def backend_pid(uow: SqlUnitOfWorkFactory) -> int:
    async with uow(one_statement=True) as tx:
        return int((await tx._statements.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def sessions(engine: AsyncEngine) -> int:
    """Backends on this database (the pool's, opened before)."""
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )
        return int(found.scalar_one()) + 1  # and this one


async def end_backends(url: str, pids: set[int]) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for pid in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_many_adds_at_once_share_the_kept_connections_and_open_no_session(
    engine: AsyncEngine, kept: Made
) -> None:
    uow = kept()
    before = await sessions(engine)

    async def add(n: int) -> int | None:
        who = CartIdentity(session_id=f"visitor-{n % 10}")
        async with uow(one_statement=True) as tx:
            return await tx.carts.add_quantity(who, 1 + n % 3, 1, 99, NOW, max_lines=100)

    added = await asyncio.gather(*(add(n) for n in range(120)))
    assert all(q is not None for q in added)
    pids = set(await asyncio.gather(*(backend_pid(uow) for _ in range(30))))
    assert len(pids) <= 3
    async with uow(one_statement=True) as tx:
        lines = await tx.carts.live_items(CartIdentity(session_id="visitor-0"))
    # Visitor 0 was sent adds 0, 10, 20, ...: products 1, 2, 3 in turn, four of each.
    assert sorted((line.product_id, line.quantity) for line in lines) == [(1, 4), (2, 4), (3, 4)]
    assert await sessions(engine) == before


async def test_a_kept_connection_the_server_ended_is_replaced_before_it_is_used(
    kept: Made, postgres_url: str
) -> None:
    uow = kept(ping_after=0.0)  # every connection is checked before use
    pids = set(await asyncio.gather(*(backend_pid(uow) for _ in range(6))))
    await end_backends(postgres_url, pids)  # say the database restarted meanwhile
    who = CartIdentity(session_id="after-restart")
    async with uow(one_statement=True) as tx:
        assert await tx.carts.add_quantity(who, 7, 2, 99, NOW) == 2
    assert await backend_pid(uow) not in pids


async def test_a_connection_that_died_in_use_fails_one_statement_at_most(
    kept: Made, postgres_url: str
) -> None:
    uow = kept(ping_after=3600.0)  # in steady use: never pinged
    pids = set(await asyncio.gather(*(backend_pid(uow) for _ in range(6))))
    await end_backends(postgres_url, pids)
    who = CartIdentity(session_id="unlucky")
    added: list[bool] = []
    for n in range(5):
        try:
            async with uow(one_statement=True) as tx:
                added.append(await tx.carts.add_quantity(who, 1 + n, 1, 99, NOW) == 1)
        except Exception:  # noqa: BLE001 - the driver's own error, whichever it is
            added.append(False)
    # The first may meet the dead connection (unless the driver already knows it is closed);
    # that one and every idle one kept with it are given up, and the next visitors are
    # served. What failed was not written.
    assert all(added[1:])
    async with uow(one_statement=True) as tx:
        lines = await tx.carts.live_items(who)
    assert sorted(line.product_id for line in lines) == [1 + n for n, ok in enumerate(added) if ok]


async def test_a_restart_that_ends_every_session_fails_one_statement_at_most(
    engine: AsyncEngine, kept: Made, postgres_url: str
) -> None:
    await open_pool(engine)
    uow = kept(ping_after=3600.0)  # in steady use: kept connections are never pinged
    pids = set(await asyncio.gather(*(backend_pid(uow) for _ in range(6))))
    async with engine.connect() as conn:  # the pool's others have been used just now
        await conn.execute(text("SELECT 1"))
    url = postgres_url.replace("postgresql+asyncpg", "postgresql")
    watcher = await asyncpg.connect(url)
    try:
        await watcher.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await watcher.close()
    who = CartIdentity(session_id="after-a-restart")
    added: list[bool] = []
    for n in range(8):
        try:
            async with uow(one_statement=True) as tx:
                added.append(await tx.carts.add_quantity(who, 1 + n, 1, 99, NOW) == 1)
        except Exception:  # noqa: BLE001 - the driver's own error, whichever it is
            added.append(False)
    # The first statement may meet its dead connection. Every other connection of the pool
    # died with it, and none of them may fail a visitor: each is checked before use.
    assert all(added[1:]), added
    assert await backend_pid(uow) not in pids
    async with engine.begin() as conn:  # a transaction, on the pool's own connections
        assert (await conn.execute(text("SELECT count(*) FROM cart_items"))).scalar_one() >= 7


async def test_a_cancelled_statement_keeps_its_connection_until_it_is_over(
    kept: Made,
) -> None:
    uow = kept(size=1)
    started = asyncio.Event()

    async def slow() -> None:
        async with uow(one_statement=True) as tx:
            started.set()
            await tx._statements.execute(text("SELECT pg_sleep(0.3)"))

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()  # the visitor went away mid-statement
    with pytest.raises(asyncio.CancelledError):
        await task
    # The one kept connection is still busy with that statement: the next one waits for it
    # and then runs, rather than meeting a connection in the middle of something else.
    who = CartIdentity(session_id="next")
    async with uow(one_statement=True) as tx:
        assert await asyncio.wait_for(tx.carts.add_quantity(who, 5, 3, 99, NOW), 10) == 3


async def test_a_visitor_gone_while_waiting_for_a_connection_takes_none_with_them(
    kept: Made,
) -> None:
    uow = kept(ping_after=0.0, size=2)
    waiters = [asyncio.create_task(backend_pid(uow)) for _ in range(20)]
    await asyncio.sleep(0)  # they all start waiting, and pinging, at once
    for task in waiters[::2]:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    # Both kept connections are free again: two statements can hold them at once.
    gate = asyncio.Event()

    async def hold() -> int:
        async with uow(one_statement=True) as tx:
            await gate.wait()
            return int((await tx._statements.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0.2)
    gate.set()
    assert len(set(await asyncio.wait_for(asyncio.gather(*holders), 10))) == 2


async def test_a_failed_statement_gives_its_kept_connection_back(kept: Made) -> None:
    uow = kept(size=1)
    who = CartIdentity(session_id="after-a-failure")
    for _ in range(3):
        with pytest.raises(asyncpg.DataError):
            async with uow(one_statement=True) as tx:
                # A quantity no column can hold: the driver refuses it.
                await tx.carts.add_quantity(who, 1, 10**12, 10**13, NOW)

    async def next_add() -> list[tuple[int, int]]:
        async with uow(one_statement=True) as tx:
            await tx.carts.add_quantity(who, 2, 1, 99, NOW)
        async with uow(one_statement=True) as tx:
            return [(line.product_id, line.quantity) for line in await tx.carts.live_items(who)]

    # The one kept connection is free: the next visitor's add runs, and is the only line.
    assert await asyncio.wait_for(next_add(), 5) == [(2, 1)]


async def make_order(
    uow: SqlUnitOfWorkFactory,
    alone: bool,
    key: str,
    items: list[NewOrderItem],
    total: str,
    fingerprint: str,
) -> Order | None:
    """An order of the bakery's for one visitor, made in one statement or a transaction."""
    async with uow(one_statement=alone) as tx:
        return await tx.orders.create(
            identity=CartIdentity(session_id="one-statement-visitor"),
            page_id=3,
            page_slug="bakery",
            page_title="Bakery",
            currency="GBP",
            total=Decimal(total),
            items=items,
            webhook_token=f"token-{key}",
            idempotency_key=key,
            cart_fingerprint=fingerprint,
            now=NOW,
            announce=True,
        )


async def test_an_order_made_in_one_statement_is_the_order_a_transaction_makes(
    kept: Made,
) -> None:
    uow = kept()
    owner = CartIdentity(session_id="one-statement-visitor")
    lines = [
        NewOrderItem(1, "Sourdough", 2, Decimal("4.50"), 11),
        NewOrderItem(2, "Rye", 1, Decimal("3.10"), None),
    ]
    alone = await make_order(uow, True, "key-alone-01", lines, "12.10", "print")
    in_tx = await make_order(uow, False, "key-in-tx-01", lines, "12.10", "print")
    assert alone is not None and in_tx is not None
    assert replace(alone, id=0, webhook_token="", idempotency_key="") == replace(
        in_tx, id=0, webhook_token="", idempotency_key=""
    )
    async with uow() as tx:
        for order in (alone, in_tx):
            assert await tx.orders.get(order.id) == order
            assert [(i.product_id, i.quantity, i.line_total, i.cart_item_id) for i in
                    await tx.orders.items(order.id)] == [
                (1, 2, Decimal("9.00"), 11),
                (2, 1, Decimal("3.10"), None),
            ]  # fmt: skip
            [record] = await tx.outbox.for_order(order.id)
            assert (record.type, record.object_id, record.payload, record.published) == (
                "Create",
                str(order.id),
                {"total": "12.10", "currency": "GBP"},
                NOW,
            )
    # The same key again: nothing more is written, by either path.
    bun = [NewOrderItem(9, "Bun", 1, Decimal("1.00"), None)]
    for one_statement in (True, False):
        assert await make_order(uow, one_statement, "key-alone-01", bun, "1.00", "other") is None
    async with uow(one_statement=True) as tx:
        assert await tx.orders.id_by_idempotency_key(owner, "key-alone-01") == alone.id
        assert await tx.orders.payable_id_by_fingerprint(owner, "print") == in_tx.id
        assert await tx.orders.payable_id_by_fingerprint(owner, "other") is None
        assert await tx.outbox.count("Create", str(in_tx.id + 1)) == 0


async def test_a_statement_whose_in_list_would_need_writing_out_is_refused_on_the_driver(
    kept: Made,
) -> None:
    async with kept()(one_statement=True) as tx:
        stmt = select(orders.c.id).where(orders.c.status.in_(["paid", "pending"]))
        with pytest.raises(ValueError, match="IN list"):
            await tx._statements.fetch_direct(stmt, {})
