"""The unit of work: one connection, one transaction, four repositories."""

from __future__ import annotations

import asyncio
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rose_cart.adapters.db.repositories import (
    SqlCartRepository,
    SqlOrderRepository,
    SqlOutboxRepository,
    SqlPageConfigRepository,
)


class SqlUnitOfWork:
    """Commits on a clean exit, rolls back on an exception."""

    carts: SqlCartRepository
    orders: SqlOrderRepository
    page_configs: SqlPageConfigRepository
    outbox: SqlOutboxRepository

    def __init__(self, engine: AsyncEngine, lock: asyncio.Lock | None) -> None:
        self._engine = engine
        self._lock = lock
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        if self._lock is not None:
            await self._lock.acquire()
        try:
            self._conn = await self._engine.connect()
            await self._conn.begin()
        except BaseException:
            if self._conn is not None:
                await self._conn.close()
            if self._lock is not None:
                self._lock.release()
            raise
        self.carts = SqlCartRepository(self._conn)
        self.orders = SqlOrderRepository(self._conn)
        self.page_configs = SqlPageConfigRepository(self._conn)
        self.outbox = SqlOutboxRepository(self._conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None
            if self._lock is not None:
                self._lock.release()


class SqlUnitOfWorkFactory:
    """Makes units of work. On SQLite (one standalone process) transactions are taken one
    at a time, because SQLite has a single writer and would otherwise answer 'locked'."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self._lock)
