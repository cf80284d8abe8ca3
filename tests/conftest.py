"""Shared fixtures: databases (SQLite always; PostgreSQL and Redis when reachable, and
always under CI, where a missing server is a failure rather than a skip)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rose_cart.adapters.db.migrate import upgrade as upgrade_cart
from rose_cart.standalone.events.migrate import upgrade as upgrade_events

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_BASE = os.environ.get("CART_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("CART_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# One database per test run, so two runs on one machine never empty each other's tables.
PG_DB = f"rose_cart_test_{os.getpid()}"
_CREATED: set[str] = set()


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if IN_CI:
        pytest.fail(f"{name} is not reachable on {host}:{port}; CI must run these tests")
    pytest.skip(f"{name} not reachable on {host}:{port}")


async def _ensure_database(name: str) -> None:
    import asyncpg

    dsn = PG_BASE.replace("postgresql+asyncpg", "postgresql") + "/postgres"
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
            _CREATED.add(name)
    finally:
        await conn.close()


async def _drop_databases(names: set[str]) -> None:
    import asyncpg

    dsn = PG_BASE.replace("postgresql+asyncpg", "postgresql") + "/postgres"
    conn = await asyncpg.connect(dsn)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def upgrade(url: str) -> None:
    """The standalone schema: the cart's tables and the events sibling's beside them."""
    upgrade_cart(url)
    upgrade_events(url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _CREATED:
        asyncio.run(_drop_databases(set(_CREATED)))


def pg_url(name: str) -> str:
    need_service("PostgreSQL", "127.0.0.1", 5432)
    asyncio.run(_ensure_database(name))
    return f"{PG_BASE}/{name}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    url = pg_url(PG_DB)
    upgrade(url)
    return url


async def _truncate(url: str) -> None:
    from sqlalchemy import text

    from rose_cart.adapters.db.engine import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "TRUNCATE cart_items, order_items, payment_attempts, orders, page_configs, "
                    "outbox, events_claim_items, events_claims, events_tickets, "
                    "events_bookings, events_ticket_types, events_entries, events_calendars "
                    "RESTART IDENTITY CASCADE"
                )
            )
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the PostgreSQL test database
    emptied before the test."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "cart.db"
        shutil.copy(template, path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_migrated")
        asyncio.run(_truncate(url))
        yield url


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """PostgreSQL only, for tests about real concurrency."""
    url = pg_url(PG_DB)
    upgrade(url)
    asyncio.run(_truncate(url))
    yield url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    need_service("Redis", "127.0.0.1", 6379)
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    yield REDIS_URL
