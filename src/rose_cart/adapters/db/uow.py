"""The unit of work: one connection, one transaction, four repositories."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rose_cart.adapters.db.repositories import (
    SqlCartRepository,
    SqlOrderRepository,
    SqlOutboxRepository,
    SqlPageConfigRepository,
)


class SqlConnection:
    """One transaction's connection, whose statements are never cancelled half-way.

    A visitor who disconnects cancels the request. Cancelling a statement in flight leaves
    the driver's connection in a state it may never close from (aiosqlite's worker loses the
    hand-off; asyncpg drops the connection), which stalled the whole service. So each
    statement runs in its own task, shielded; the cancelled request moves on at once, and
    the transaction's end waits for that statement before it rolls back.
    """

    def __init__(self, conn: AsyncConnection, *, autocommit: bool = False) -> None:
        self._conn = conn
        self._inflight: asyncio.Task[Any] | None = None
        #: PostgreSQL outside a transaction: a statement may go straight to the driver.
        self.direct = autocommit and conn.dialect.name == "postgresql"
        self._driver: Any = None

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        task = asyncio.ensure_future(self._conn.execute(statement, parameters))
        self._inflight = task
        return await asyncio.shield(task)

    async def fetch_direct(self, statement: Any, parameters: dict[str, Any]) -> list[Any]:
        """Run a Core statement on the driver itself (only when ``direct``): compiled
        once, prepared once per connection by asyncpg, and none of the per-statement
        work of SQLAlchemy's execution layer. Rows are the driver's records (by name).
        Shielded like ``execute``."""
        sql, names, defaults = _compiled(statement, self._conn.dialect)
        values = {**defaults, **parameters}
        task = asyncio.ensure_future(self._fetch(sql, [values[n] for n in names]))
        self._inflight = task
        return await asyncio.shield(task)

    async def _fetch(self, sql: str, args: list[Any]) -> list[Any]:
        if self._driver is None:
            raw = await self._conn.get_raw_connection()
            self._driver = raw.driver_connection
        try:
            rows: list[Any] = await self._driver.fetch(sql, *args)
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            # Broken: the pool must not hand this connection out again.
            await self._conn.invalidate()
            raise
        return rows

    async def settle(self) -> None:
        """Wait for the statement in flight, if a cancelled request left one."""
        task, self._inflight = self._inflight, None
        if task is None:
            return
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the request that wanted it is gone


_COMPILED: dict[tuple[Any, str], tuple[str, list[str], dict[str, Any]]] = {}


def _compiled(statement: Any, dialect: Dialect) -> tuple[str, list[str], dict[str, Any]]:
    """SQL text, parameter names in order and fixed values (literals) of a statement that
    lives for the whole process (built once, as the hot statements are)."""
    key = (statement, dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        found = (str(compiled), list(compiled.positiontup or []), dict(compiled.params))
        _COMPILED[key] = found
    return found


class SqlUnitOfWork:
    """Commits on a clean exit, rolls back on an exception.

    ``one_statement``: the work is a single statement, which the database makes atomic by
    itself; it runs without BEGIN and COMMIT (on PostgreSQL that saves two round trips).
    A read that follows it, for an error message, sees the statement committed.
    """

    carts: SqlCartRepository
    orders: SqlOrderRepository
    page_configs: SqlPageConfigRepository
    outbox: SqlOutboxRepository

    def __init__(
        self, engine: AsyncEngine, lock: asyncio.Lock | None, *, one_statement: bool = False
    ) -> None:
        self._engine = engine
        self._lock = lock
        self._conn: AsyncConnection | None = None
        self._one_statement = one_statement

    async def __aenter__(self) -> SqlUnitOfWork:
        if self._lock is not None:
            await self._lock.acquire()
        try:
            self._conn = await self._engine.connect()
            if not self._one_statement:
                await self._conn.begin()
        except BaseException:
            if self._conn is not None:
                await self._conn.close()
            if self._lock is not None:
                self._lock.release()
            raise
        self._statements = SqlConnection(self._conn, autocommit=self._one_statement)
        self.carts = SqlCartRepository(self._statements)
        self.orders = SqlOrderRepository(self._statements)
        self.page_configs = SqlPageConfigRepository(self._statements)
        self.outbox = SqlOutboxRepository(self._statements)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded: a visitor who disconnects cancels the request, and a transaction left
        # half-ended (or the SQLite writer lock left held) would stall every later request.
        await asyncio.shield(self._finish(commit=exc_type is None))

    async def _finish(self, *, commit: bool) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            try:
                await self._statements.settle()
                if commit:
                    await conn.commit()
                else:
                    await conn.rollback()
            finally:
                await conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()


class SqlUnitOfWorkFactory:
    """Makes units of work. On SQLite (one standalone process) transactions are taken one
    at a time, because SQLite has a single writer and would otherwise answer 'locked'."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # PostgreSQL's single statements run in autocommit (no BEGIN/COMMIT round trips);
        # it shares the pool. SQLite's driver opens and commits its own transaction around
        # a lone write, and switching its mode would cost two trips to its thread.
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    def __call__(self, *, one_statement: bool = False) -> SqlUnitOfWork:
        if one_statement:
            return SqlUnitOfWork(self._autocommit, self._lock, one_statement=True)
        return SqlUnitOfWork(self.engine, self._lock)
