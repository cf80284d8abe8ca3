"""The events sibling's schema lives beside the cart's as a separate service's would: its
own tables, its own Alembic revisions and version table, and neither touches the other."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from rose_cart.adapters.db.engine import make_engine
from rose_cart.adapters.db.migrate import downgrade as downgrade_cart
from rose_cart.adapters.db.migrate import upgrade as upgrade_cart
from rose_cart.cli import main
from rose_cart.standalone.events.migrate import downgrade, upgrade
from rose_cart.standalone.events.tables import metadata
from tests.conftest import pg_url

EVENTS_TABLES = {
    "events_calendars",
    "events_entries",
    "events_ticket_types",
    "events_bookings",
    "events_tickets",
    "events_claims",
    "events_claim_items",
}


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _versions(url: str) -> dict[str, str]:
    engine = make_engine(url)
    found: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            for table in ("alembic_version", "events_alembic_version"):
                if table in names:
                    row = (await conn.execute(text(f"SELECT version_num FROM {table}"))).first()
                    if row is not None:
                        found[table] = row[0]
    finally:
        await engine.dispose()
    return found


async def _drop_everything(url: str) -> None:
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
    url = pg_url(f"rose_cart_events_migrations_test_{os.getpid()}")
    asyncio.run(_drop_everything(url))
    return url


def test_events_and_cart_migrate_independently_in_one_database(empty_database: str) -> None:
    upgrade(empty_database)
    assert asyncio.run(_tables(empty_database)) == EVENTS_TABLES | {"events_alembic_version"}
    assert asyncio.run(_versions(empty_database)) == {"events_alembic_version": "e0001"}

    upgrade_cart(empty_database)
    tables = asyncio.run(_tables(empty_database))
    assert EVENTS_TABLES | {"alembic_version", "cart_items", "orders"} <= tables
    versions = asyncio.run(_versions(empty_database))
    assert versions["events_alembic_version"] == "e0001"
    assert versions["alembic_version"] != "e0001"

    # Taking the events down leaves the cart's tables as they were, and back again.
    downgrade(empty_database, "base")
    after = asyncio.run(_tables(empty_database))
    assert not (after & EVENTS_TABLES)
    assert {"cart_items", "orders", "alembic_version"} <= after
    upgrade(empty_database)
    assert asyncio.run(_tables(empty_database)) >= EVENTS_TABLES

    # And the cart's downgrade leaves the events' alone.
    downgrade_cart(empty_database, "base")
    assert asyncio.run(_tables(empty_database)) - {"alembic_version"} == EVENTS_TABLES | {
        "events_alembic_version"
    }


def test_the_migrations_make_exactly_the_tables_the_code_describes(empty_database: str) -> None:
    upgrade_cart(empty_database)
    upgrade(empty_database)

    def diff(conn: Any) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, type_, parents: (
                    type_ != "table" or str(name).startswith("events_")
                ),
                "version_table": "events_alembic_version",
            },
        )
        return list(compare_metadata(context, metadata))

    async def run() -> list[Any]:
        engine = make_engine(empty_database)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(diff)
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == []


def test_rose_cart_migrate_in_standalone_mode_makes_the_events_tables_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CART_DATABASE_URL", url)
    monkeypatch.setenv("CART_MODE", "standalone")
    assert main(["migrate"]) == 0
    assert "events" in capsys.readouterr().out
    assert set(asyncio.run(_versions(url))) == {"alembic_version", "events_alembic_version"}
    assert asyncio.run(_tables(url)) >= EVENTS_TABLES
