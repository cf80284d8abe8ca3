"""The unit of work: one connection, one transaction, four repositories."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from types import TracebackType
from typing import Any, NamedTuple, Protocol

import asyncpg
from sqlalchemy import Connection, create_engine, event, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from rose_cart.adapters.db.engine import connections_lost
from rose_cart.adapters.db.repositories import (
    SqlCartRepository,
    SqlOrderRepository,
    SqlOutboxRepository,
    SqlPageConfigRepository,
)
from rose_cart.ports import UNINTERRUPTED

log = logging.getLogger(__name__)

#: What the driver raises when the connection itself is gone: the network, or the server
#: ending the session (shut down, restarted, or an administrator's pg_terminate_backend).
_CONNECTION_ENDED = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    # The server's goodbye arrived mid-statement and left the protocol in a state no
    # statement can follow ("another operation is in progress").
    asyncpg.exceptions.InternalClientError,
)


class Statements(Protocol):
    """What the repositories run their statements on."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def direct(self) -> bool:
        """Statements may go to the driver itself (``fetch_direct``)."""
        ...

    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...

    async def fetch_direct(self, statement: Any, parameters: dict[str, Any]) -> list[Any]: ...

    async def settle(self) -> None: ...


class SqlConnection:
    """One transaction's connection, whose statements are never cancelled half-way.

    A visitor who disconnects cancels the request. Cancelling a statement in flight leaves
    the driver's connection in a state it may never close from (aiosqlite's worker loses the
    hand-off; asyncpg drops the connection), which stalled the whole service. So each
    statement runs in its own task, shielded; the cancelled request moves on at once, and
    the transaction's end waits for that statement before it rolls back.
    """

    def __init__(
        self, conn: AsyncConnection, *, autocommit: bool = False, driver: Any = None
    ) -> None:
        self._conn = conn
        self._inflight: asyncio.Task[Any] | None = None
        #: PostgreSQL outside a transaction: a statement may go straight to the driver.
        self.direct = autocommit and conn.dialect.name == "postgresql"
        self._driver: Any = driver

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if UNINTERRUPTED.get():  # nothing will cancel it: no task of its own needed
            return await self._conn.execute(statement, parameters)
        task = asyncio.ensure_future(self._conn.execute(statement, parameters))
        self._inflight = task
        return await asyncio.shield(task)

    async def fetch_direct(self, statement: Any, parameters: dict[str, Any]) -> list[Any]:
        """Run a Core statement on the driver itself (only when ``direct``): compiled
        once, prepared once per connection by asyncpg, and none of the per-statement
        work of SQLAlchemy's execution layer. Rows are the driver's records (by name).
        Shielded like ``execute``."""
        # asyncpg takes and gives Python's own types: no conversions to apply.
        sql, names, defaults, _, _ = _compiled(statement, self._conn.dialect)
        values = {**defaults, **parameters}
        if UNINTERRUPTED.get():
            return await self._fetch(sql, [values[n] for n in names])
        task = asyncio.ensure_future(self._fetch(sql, [values[n] for n in names]))
        self._inflight = task
        return await asyncio.shield(task)

    async def _fetch(self, sql: str, args: list[Any]) -> list[Any]:
        if self._driver is None:
            raw = await self._conn.get_raw_connection()
            self._driver = raw.driver_connection
        try:
            rows: list[Any] = await self._driver.fetch(sql, *args)
        except _CONNECTION_ENDED:
            # Broken: the pool must not hand this connection out again, and its others,
            # likely ended with it, are checked before they are.
            connections_lost(self._conn.engine)
            await self._conn.invalidate()
            raise
        except asyncpg.IntegrityConstraintViolationError as error:
            # As SQLAlchemy says it: a broken constraint reads the same by either path.
            raise exc.IntegrityError(sql, args, error) from error
        return rows

    async def settle(self) -> None:
        """Wait for the statement in flight, if a cancelled request left one."""
        task = self._inflight
        if task is not None and not task.done():
            await asyncio.wait([task])
        self.over()

    def over(self) -> bool:
        """No statement is in flight (the last one, if any, has ended)."""
        task = self._inflight
        if task is None:
            return True
        if not task.done():
            return False
        self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved: a request that wanted it may be gone
        return True


class _Compiled(NamedTuple):
    sql: str
    #: Parameter names in the order the SQL takes them.
    names: list[str]
    #: Fixed values (literals) of the statement.
    defaults: dict[str, Any]
    #: What SQLAlchemy does to a parameter on the way in, by name (where it does anything).
    binds: dict[str, Any]
    #: Each result column's name and what SQLAlchemy does to it on the way out (or None).
    columns: list[tuple[str, Any]]


_COMPILED: dict[tuple[Any, str], _Compiled] = {}


def _compiled(statement: Any, dialect: Dialect) -> _Compiled:
    """A statement that lives for the whole process (built once, as the hot statements
    are), compiled once for the dialect, for running on the driver itself."""
    key = (statement, dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params:
            # SQLAlchemy writes such a list out at each execution; here nothing would.
            raise ValueError("a statement run on the driver cannot hold an IN list to expand")
        # asyncpg takes and gives Python's own types; SQLite's driver needs the conversions.
        converts = dialect.name == "sqlite"
        found = _Compiled(
            str(compiled),
            list(compiled.positiontup or []),
            dict(compiled.params),
            dict(getattr(compiled, "_bind_processors", {}) or {}) if converts else {},
            [
                (
                    entry.keyname,
                    entry.type._cached_result_processor(dialect, None) if converts else None,
                )
                for entry in compiled._result_columns
            ],
        )
        _COMPILED[key] = found
    return found


class _Held:
    """A connection the hot set holds, and what it knows of it."""

    __slots__ = ("conn", "driver", "returned_at")

    def __init__(self, conn: AsyncConnection, driver: Any) -> None:
        self.conn = conn
        self.driver = driver
        self.returned_at = time.monotonic()


class HotConnections:
    """PostgreSQL connections in autocommit, kept out of the pool for single statements.

    An add to the cart or a read of it is one statement; taking a connection from the pool
    and giving it back costs more than the statement itself (the pool's bookkeeping, its
    events, switching the connection to autocommit and back). These connections are taken
    from the same fixed pool once and kept, so the number of database sessions does not
    change; a statement waits for one of them as a transaction waits for the pool.

    A connection idle for ``ping_after`` seconds is pinged before it is used again. One that
    fails (the server restarted, the session was ended) is given back to the pool to be
    thrown away, and so is every idle one, as they are likely gone too.
    """

    def __init__(self, engine: AsyncEngine, size: int, ping_after: float) -> None:
        self._engine = engine
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Held] = []
        self._ping_after = ping_after
        self._closed = False

    async def acquire(self) -> _Held:
        await self._slots.acquire()
        if self._idle and self._fresh(self._idle[-1]):
            return self._idle.pop()  # the steady case: nothing to wait for
        # A ping or a new connection: a request cancelled meanwhile must not take the
        # connection with it, so that work runs on and keeps what it got.
        task = asyncio.ensure_future(self._take())
        try:
            return await asyncio.shield(task)
        except BaseException:
            self._slots.release()
            task.add_done_callback(self._keep_unwanted)
            raise

    async def _take(self) -> _Held:
        while self._idle:
            held = self._idle.pop()
            if self._fresh(held) or (not held.driver.is_closed() and await self._alive(held)):
                return held
            connections_lost(self._engine)  # the pool's are likely gone too
            await self._forget(held)
            await self._drop_idle()
        conn = await self._engine.connect()
        try:
            raw = await conn.get_raw_connection()
        except BaseException:
            await conn.close()
            raise
        return _Held(conn, raw.driver_connection)

    def _fresh(self, held: _Held) -> bool:
        """In steady use and not known to be closed: handed out without a ping."""
        return (
            time.monotonic() - held.returned_at < self._ping_after and not held.driver.is_closed()
        )

    def _keep_unwanted(self, task: asyncio.Task[_Held]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        held = task.result()
        held.returned_at = time.monotonic()
        self._idle.append(held)

    def release_now(self, held: _Held) -> bool:
        """Give a connection back at once when it is healthy and holds nothing open (the
        steady case); False leaves it to ``release``."""
        if (
            self._closed
            or held.conn.invalidated
            or held.driver.is_closed()
            or held.conn.in_transaction()
        ):
            return False
        held.returned_at = time.monotonic()
        self._idle.append(held)
        self._slots.release()
        return True

    async def release(self, held: _Held) -> None:
        """Give a connection back once its statement is over (settled)."""
        if self.release_now(held):
            return
        try:
            if held.conn.invalidated or held.driver.is_closed() or self._closed:
                await self._forget(held)
                if not self._closed:
                    await self._drop_idle()
                return
            await held.conn.commit()  # SQLAlchemy's own bookkeeping; nothing is open
            held.returned_at = time.monotonic()
            self._idle.append(held)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        self._closed = True
        await self._drop_idle()

    async def _alive(self, held: _Held) -> bool:
        try:
            await held.driver.fetchval("SELECT 1")
        except Exception as exc:
            log.info("a kept database connection was gone (%s); opening another", exc)
            return False
        return True

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for held in idle:
            await self._forget(held)

    @staticmethod
    async def _forget(held: _Held) -> None:
        """Give a connection back to the pool to be thrown away, not handed out again."""
        try:
            if not held.conn.invalidated:
                await held.conn.invalidate()
            await held.conn.close()
        except Exception:  # already gone: the pool forgets it all the same
            log.debug("closing a kept connection failed", exc_info=True)


class SqliteDirect:
    """SQLite single statements run on the event loop's own thread, not aiosqlite's.

    aiosqlite sends every step of a statement (the cursor, the statement, the rows, the
    commit) to its thread and back, and each trip costs more CPU than a small statement on
    a local file. A single statement (an add, the read of a cart's lines) runs here on a
    connection of the standard driver kept for it, in autocommit, while the unit of work
    holds the process's SQLite turn, so no other connection of this process is writing.

    The file is shared with the events sibling, whose transactions may hold SQLite's
    write lock while they wait for something: this connection never waits for that lock
    (blocking the loop would keep the holder from finishing). A statement that finds the
    database locked runs again on aiosqlite's thread, which waits as every other unit of
    work does; in autocommit, a statement refused so wrote nothing. Readers never wait in
    WAL mode.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._async_engine = engine
        self._engine = create_engine(
            engine.url.set(drivername="sqlite"),
            isolation_level="AUTOCOMMIT",
            poolclass=StaticPool,
            connect_args={"timeout": 0, "check_same_thread": False},
        )

        @event.listens_for(self._engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=0")
            # Per connection, as the engine's own (the file is already in WAL mode): a
            # commit does not wait for the disk, which would stop the loop meanwhile.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        self._conn: Connection | None = None
        self.dialect = self._engine.dialect
        #: Statements that found the database locked and ran on aiosqlite's thread.
        self.handed_over = 0

    def __call__(self) -> _SqliteStatements:
        return _SqliteStatements(self)

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self._engine.connect()
        return conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        conn = self._connection()
        try:
            result = conn.execute(statement, parameters)
            # Buffered, so no read is left open on the file; a write's row count stays.
            return result.freeze()() if result.returns_rows else result
        except exc.OperationalError as error:
            if not _locked(error):
                raise
        return await self._handed_over(statement, parameters)

    async def fetch_direct(self, statement: Any, parameters: dict[str, Any]) -> list[Any]:
        """A hot statement (built once for the whole process) straight on the driver: its
        SQL, parameters and column types worked out once; rows as dicts by column name,
        with the columns' own types. SQLAlchemy's execution layer cost ten times the
        statement. Locked: as ``execute``."""
        sql, names, defaults, binds, columns = _compiled(statement, self.dialect)
        values = {**defaults, **parameters}
        args = [binds[name](values[name]) if name in binds else values[name] for name in names]
        raw = self._connection().connection.dbapi_connection
        assert raw is not None
        try:
            cursor = raw.execute(sql, args)
            try:
                rows = cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.OperationalError as error:
            if not _locked(error):
                raise
        else:
            return [
                {
                    name: convert(v) if convert else v
                    for (name, convert), v in zip(columns, row, strict=True)
                }
                for row in rows
            ]
        result = await self._handed_over(statement, parameters)
        return [dict(r._mapping) for r in result] if result.returns_rows else []

    async def _handed_over(self, statement: Any, parameters: Any) -> Any:
        """The statement on aiosqlite's thread, which waits for the write lock."""
        self.handed_over += 1
        async with self._async_engine.connect() as other:
            result = await other.execute(statement, parameters)
            await other.commit()
            return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


def _locked(error: BaseException) -> bool:
    text = str(getattr(error, "orig", None) or error).lower()
    return "locked" in text or "busy" in text


class _SqliteStatements:
    """The statements of one single-statement unit of work on ``SqliteDirect``."""

    def __init__(self, runner: SqliteDirect) -> None:
        self._runner = runner

    @property
    def dialect(self) -> Dialect:
        return self._runner.dialect

    @property
    def direct(self) -> bool:
        return True

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return await self._runner.execute(statement, parameters)

    async def fetch_direct(self, statement: Any, parameters: dict[str, Any]) -> list[Any]:
        return await self._runner.fetch_direct(statement, parameters)

    async def settle(self) -> None:
        """Nothing is ever left in flight: a statement here is not interrupted."""


class SqlUnitOfWork:
    """Commits on a clean exit, rolls back on an exception.

    ``one_statement``: the work is a single statement, which the database makes atomic by
    itself; it runs without BEGIN and COMMIT (on PostgreSQL that saves two round trips,
    and the statement runs on one of the ``hot`` connections). A read that follows it, for
    an error message, sees the statement committed.
    """

    carts: SqlCartRepository
    orders: SqlOrderRepository
    page_configs: SqlPageConfigRepository
    outbox: SqlOutboxRepository

    def __init__(
        self,
        engine: AsyncEngine,
        lock: asyncio.Lock | None,
        *,
        one_statement: bool = False,
        hot: HotConnections | None = None,
        sqlite_direct: SqliteDirect | None = None,
    ) -> None:
        self._engine = engine
        self._lock = lock
        self._conn: AsyncConnection | None = None
        self._one_statement = one_statement
        self._hot = hot
        self._held: _Held | None = None
        self._sqlite_direct = sqlite_direct
        self._statements: Statements

    async def __aenter__(self) -> SqlUnitOfWork:
        if self._sqlite_direct is not None:
            if self._lock is not None:
                await self._lock.acquire()
            self._statements = self._sqlite_direct()
            return self._with_repositories()
        if self._hot is not None:
            self._held = await self._hot.acquire()
            self._conn = self._held.conn
            self._statements = SqlConnection(self._conn, autocommit=True, driver=self._held.driver)
            return self._with_repositories()
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
        return self._with_repositories()

    def _with_repositories(self) -> SqlUnitOfWork:
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
        if self._finished_now():
            return
        if UNINTERRUPTED.get():
            await self._finish(commit=exc_type is None)
            return
        # Shielded: a visitor who disconnects cancels the request, and a transaction left
        # half-ended (or the SQLite writer lock left held) would stall every later request.
        await asyncio.shield(self._finish(commit=exc_type is None))

    def _finished_now(self) -> bool:
        """End the unit here when there is nothing to wait for, as in the steady case: a
        SQLite statement run on the loop's thread (it has committed), or a statement on a
        hot connection that has ended. A shielded ending is a task of its own."""
        if self._sqlite_direct is not None:
            if self._lock is not None:
                self._lock.release()
            return True
        held = self._held
        statements = self._statements
        if (
            held is None
            or self._hot is None
            or not isinstance(statements, SqlConnection)
            or not statements.over()
            or not self._hot.release_now(held)
        ):
            return False
        self._held = self._conn = None
        return True

    async def _finish(self, *, commit: bool) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        held, self._held = self._held, None
        if held is not None and self._hot is not None:
            try:
                await self._statements.settle()
            finally:
                await self._hot.release(held)
            return
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
    at a time, because SQLite has a single writer and would otherwise answer 'locked'.

    On PostgreSQL, single statements run in autocommit (no BEGIN/COMMIT round trips) on
    ``hot_connections`` of the pool's connections, kept for them (see ``HotConnections``);
    transactions share the rest. SQLite's driver opens and commits its own transaction
    around a lone write; single statements on a SQLite file run on the loop's own thread
    (see ``SqliteDirect``) unless ``sqlite_direct`` is off.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        hot_connections: int = 0,
        ping_after: float = 10.0,
        sqlite_direct: bool = True,
    ) -> None:
        self.engine = engine
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        postgres = engine.dialect.name == "postgresql"
        self.writes_alone = postgres
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        )
        self._hot = (
            HotConnections(self._autocommit, hot_connections, ping_after)
            if postgres and hot_connections > 0
            else None
        )
        database = engine.url.database or ""
        self.sqlite_direct = (
            SqliteDirect(engine)
            if sqlite_direct
            and engine.dialect.name == "sqlite"
            and database not in {"", ":memory:"}
            and "mode=memory" not in str(engine.url)
            else None
        )

    def __call__(self, *, one_statement: bool = False) -> SqlUnitOfWork:
        if one_statement:
            return SqlUnitOfWork(
                self._autocommit,
                self._lock,
                one_statement=True,
                hot=self._hot,
                sqlite_direct=self.sqlite_direct,
            )
        return SqlUnitOfWork(self.engine, self._lock)

    async def aclose(self) -> None:
        """Give the kept connections back to the pool (before the engine is disposed)."""
        if self._hot is not None:
            await self._hot.aclose()
        if self.sqlite_direct is not None:
            self.sqlite_direct.close()
