"""Single statements on a SQLite file run on the event loop's own thread, and the database
file is shared with the events sibling, which may hold SQLite's write lock for a while: an
add then waits for it without stopping the service, and lands once, after it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rose_cart.adapters.db.engine import make_engine
from rose_cart.adapters.db.uow import SqlUnitOfWorkFactory
from rose_cart.domain.errors import TooManyLines
from rose_cart.domain.identity import CartIdentity

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = CartIdentity(session_id="alice-session")


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "cart.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def _path(url: str) -> Path:
    return Path(url.split(":///", 1)[1])


async def test_adds_and_reads_while_another_connection_holds_the_write_lock(
    sqlite_url: str,
) -> None:
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    assert uow.sqlite_direct is not None
    holder = sqlite3.connect(_path(sqlite_url), isolation_level=None)
    try:
        async with uow(one_statement=True) as tx:
            await tx.carts.add_quantity(ALICE, 1, 2, 99, NOW, max_lines=100)
        holder.execute("BEGIN IMMEDIATE")  # the events sibling, mid-transaction
        holder.execute("UPDATE cart_items SET quantity = quantity WHERE 0")

        # A read is answered at once, with what is committed.
        async with uow(one_statement=True) as tx:
            assert [(i.product_id, i.quantity) for i in await tx.carts.live_items(ALICE)] == [
                (1, 2)
            ]

        async def add() -> int | None:
            async with uow(one_statement=True) as tx:
                return await tx.carts.add_quantity(ALICE, 1, 3, 99, NOW, max_lines=100)

        adding = asyncio.create_task(add())
        # The loop goes on serving while the add waits for the lock (a loop kept waiting
        # by it would take SQLite's busy timeout, seconds, for these ticks).
        started = time.monotonic()
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 2 and not adding.done()
        holder.execute("COMMIT")
        assert await asyncio.wait_for(adding, 10) == 5
        assert uow.sqlite_direct.handed_over == 1

        async with uow(one_statement=True) as tx:
            assert [(i.product_id, i.quantity) for i in await tx.carts.live_items(ALICE)] == [
                (1, 5)
            ]
        # Once the lock is free again, statements run on the loop's thread again.
        async with uow(one_statement=True) as tx:
            await tx.carts.add_quantity(ALICE, 2, 1, 99, NOW, max_lines=100)
        assert uow.sqlite_direct.handed_over == 1
    finally:
        holder.close()
        await uow.aclose()
        await engine.dispose()


async def test_a_refused_statement_leaves_the_next_ones_working(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        async with uow(one_statement=True) as tx:
            assert await tx.carts.add_quantity(ALICE, 1, 1, 99, NOW, max_lines=1) == 1
        with pytest.raises(TooManyLines):
            async with uow(one_statement=True) as tx:
                await tx.carts.add_quantity(ALICE, 2, 1, 99, NOW, max_lines=1)
        async with uow(one_statement=True) as tx:
            assert await tx.carts.add_quantity(ALICE, 1, 1, 99, NOW, max_lines=1) == 2
            assert [i.product_id for i in await tx.carts.live_items(ALICE)] == [1]
        # What the loop's connection wrote, a transaction on aiosqlite's thread reads.
        async with uow() as tx:
            assert [(i.product_id, i.quantity) for i in await tx.carts.live_items(ALICE)] == [
                (1, 2)
            ]
    finally:
        await uow.aclose()
        await engine.dispose()


async def test_an_in_memory_database_keeps_every_statement_on_one_connection() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    assert SqlUnitOfWorkFactory(engine).sqlite_direct is None
    await engine.dispose()


async def test_the_loops_connection_does_not_wait_for_the_disk_on_commit(
    sqlite_url: str,
) -> None:
    # With SQLite's default (FULL), every add would stop the whole service until the disk
    # had its commit; in WAL mode NORMAL loses no consistency, as the engine's own.
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        assert uow.sqlite_direct is not None
        async with uow(one_statement=True) as tx:
            await tx.carts.add_quantity(ALICE, 1, 1, 99, NOW, max_lines=100)
        conn = uow.sqlite_direct._connection()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        await uow.aclose()
        await engine.dispose()
