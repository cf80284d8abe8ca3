from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import inspect

from rose_cart.adapters.db.engine import make_engine
from rose_cart.adapters.db.migrate import downgrade, upgrade
from tests.conftest import pg_url

TABLES_0001 = {"cart_items", "orders", "order_items", "payment_attempts", "page_configs", "outbox"}
TABLES = TABLES_0001 | {"refunds"}


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    return names - {"alembic_version"}


async def _drop_everything(url: str) -> None:
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    url = pg_url(f"rose_cart_migrations_test_{os.getpid()}")
    asyncio.run(_drop_everything(url))
    return url


def test_upgrade_from_empty_then_downgrade_last_revision(empty_database: str) -> None:
    assert asyncio.run(_tables(empty_database)) == set()
    upgrade(empty_database)
    assert asyncio.run(_tables(empty_database)) == TABLES
    downgrade(empty_database, "-1")
    assert asyncio.run(_tables(empty_database)) == TABLES_0001
    downgrade(empty_database, "base")
    assert asyncio.run(_tables(empty_database)) == set()
    upgrade(empty_database)  # and back up again
    assert asyncio.run(_tables(empty_database)) == TABLES


def test_migrations_match_the_table_descriptions(empty_database: str) -> None:
    """Every column the code relies on exists after migrating (no drift)."""
    from rose_cart.adapters.db.tables import metadata

    upgrade(empty_database)

    async def columns() -> dict[str, set[str]]:
        engine = make_engine(empty_database)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: {
                        t: {col["name"] for col in inspect(c).get_columns(t)} for t in TABLES
                    }
                )
        finally:
            await engine.dispose()

    found = asyncio.run(columns())
    for table in metadata.sorted_tables:
        assert {c.name for c in table.columns} == found[table.name], table.name


def test_orders_made_before_the_lifecycle_revision_carry_on(empty_database: str) -> None:
    """An order with two attempts from before revision 0002 keeps them, numbered, and reads
    as an aggregate afterwards."""
    from sqlalchemy import text

    from rose_cart.adapters.db.uow import SqlUnitOfWorkFactory

    upgrade(empty_database, "0001")

    async def seed_then_read() -> tuple[list[int], str, str]:
        engine = make_engine(empty_database)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO orders (id, status, currency, total, webhook_token, "
                        "needs_refund, created_at, updated_at) VALUES (1, 'pending', 'GBP', "
                        "9, 'tok', false, '2026-11-01 10:00:00+00', '2026-11-01 10:00:00+00')"
                    )
                )
                for attempt_id, status in [(5, "expired"), (9, "pending")]:
                    await conn.execute(
                        text(
                            "INSERT INTO payment_attempts (id, order_id, status, amount, "
                            "currency, reference, provider_checkout_id, created_at, "
                            "updated_at) VALUES (:id, 1, :status, 9, 'GBP', :ref, :chk, "
                            "'2026-11-01 10:00:00+00', '2026-11-01 10:00:00+00')"
                        ),
                        {
                            "id": attempt_id,
                            "status": status,
                            "ref": f"rose-1-{attempt_id}",
                            "chk": f"chk-{attempt_id}",
                        },
                    )
        finally:
            await engine.dispose()
        await asyncio.to_thread(upgrade, empty_database)
        engine = make_engine(empty_database)
        try:
            async with SqlUnitOfWorkFactory(engine)() as tx:
                order = await tx.orders.get(1)
        finally:
            await engine.dispose()
        assert order is not None
        live = order.live_attempt()
        assert live is not None, order.attempts
        return [a.number for a in order.attempts], live.reference, order.status.value

    numbers, live_reference, status = asyncio.run(seed_then_read())
    assert numbers == [1, 2]
    assert live_reference == "rose-1-9" and status == "pending"
