"""Engine creation: SQLite (standalone) or PostgreSQL (split mode)."""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

#: A pooled PostgreSQL connection idle for longer than this is pinged before it is handed
#: out. Under steady load connections are never idle that long, so the hot path pays no
#: ping (the driver's own pre-ping costs three round trips: BEGIN, a statement, ROLLBACK).
IDLE_PING_SECONDS = 10.0


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(
    url: str, *, pool_size: int = 20, pool_timeout: float = 30.0, echo: bool = False
) -> AsyncEngine:
    """The engine for ``url``.

    PostgreSQL: a fixed pool of ``pool_size`` connections and no overflow, so that a burst
    waits for a connection (transactions here are short: no remote call happens inside
    one) instead of opening and closing sessions; give each worker a pool as large as the
    number of requests it serves at once. SQLite: one writer at a time (the unit of work
    takes turns), WAL with ``synchronous=NORMAL`` (a commit does not wait for the disk; a
    power cut may lose the last commits, never the file's consistency).
    """
    if is_sqlite(url):
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": 30},
            # The unit of work always ends its transaction; the pool's own rollback on
            # return would be one more trip to the driver's thread for nothing.
            pool_reset_on_return=None,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
    )
    _ping_when_idle(engine, IDLE_PING_SECONDS)
    return engine


async def open_pool(engine: AsyncEngine) -> None:
    """Open every connection of a PostgreSQL pool at once, before serving: a worker under
    load then never stops to open a session (SQLite's pool needs no warming)."""
    size = getattr(engine.sync_engine.pool, "size", None)
    if engine.dialect.name != "postgresql" or not callable(size):
        return
    conns = []
    try:
        for _ in range(size()):
            conns.append(await engine.connect())
    except Exception as exc:  # the first requests will open them, or say what is wrong
        log.warning("could not open the database pool before serving: %s", exc)
    finally:
        for conn in conns:
            await conn.close()


#: When a statement run on the driver itself last found its server gone, by pool.
_LOST_AT: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def connections_lost(engine: AsyncEngine) -> None:
    """A statement run on the driver itself (not through SQLAlchemy, which would have
    invalidated the pool) found the server gone: a restart ends every session at once, so
    each connection given back to the pool before now is pinged on its next checkout, and
    replaced if it is dead, instead of failing the next visitor."""
    _LOST_AT[engine.sync_engine.pool] = time.monotonic()


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that sat in the pool a while: a
    dead one is replaced before a request gets it. A connection in steady use is not
    pinged; should the server go away under it, the failing statement invalidates the
    pool (or, on the driver itself, says so: ``connections_lost``), so every older
    connection is checked on its next checkout."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None:
            return  # fresh from connect
        if time.monotonic() - returned < idle_seconds and returned > _LOST_AT.get(pool, 0.0):
            return  # in steady use, and the server has not been seen gone since
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as error:
            # The pool retries the checkout with a new connection.
            raise exc.DisconnectionError() from error
