"""Caches: in-memory (one process, standalone) and Redis (shared by every worker)."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

log = logging.getLogger(__name__)


class InMemoryCache:
    """A dict with expiry. Correct only within one process, which is all standalone has."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._data: dict[str, tuple[float, str]] = {}
        self._max = max_entries

    async def get(self, key: str) -> str | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        expires, value = hit
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        if len(self._data) >= self._max:
            self._data.clear()  # crude, but bounded memory matters more than hit rate here
        self._data[key] = (time.monotonic() + ttl_seconds, value)

    async def set_many(self, items: Mapping[str, str], ttl_seconds: int) -> None:
        for key, value in items.items():
            await self.set(key, value, ttl_seconds)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)


class CacheUnavailable(Exception):
    """Redis did not answer (down, slow, or the connection broke)."""


class _RedisProtocol(asyncio.Protocol):
    """One pipelined connection: commands go out as they come, replies come back in the
    same order and settle the waiting futures in turn. A reply later than ``timeout``
    drops the connection, which fails every command still waiting on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        # Commands of one turn of the event loop go out in one write (one system call).
        self._outgoing: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            reply = self._reader.gets()
            if reply is False:
                return
            if not self._waiting:  # nobody asked: the stream is out of step
                self.abort()
                return
            future, _ = self._waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(CacheUnavailable(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(CacheUnavailable("connection lost"))

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def send(self, commands: Sequence[Sequence[Any]]) -> list[asyncio.Future[Any]]:
        """Write the commands in one go; one future per reply."""
        if self.closed or self._transport is None:
            raise CacheUnavailable("not connected")
        deadline = self._loop.time() + self._timeout
        futures = []
        for _ in commands:
            future = self._loop.create_future()
            self._waiting.append((future, deadline))
            futures.append(future)
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.extend(hiredis.pack_command(tuple(c)) for c in commands)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)
        return futures

    def _flush(self) -> None:
        data, self._outgoing = b"".join(self._outgoing), []
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    def _check_deadline(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        _, deadline = self._waiting[0]
        if self._loop.time() >= deadline:
            log.warning("cache: no reply within %.1f s; dropping the connection", self._timeout)
            self.abort()
            return
        self._watchdog = self._loop.call_at(deadline, self._check_deadline)


async def _replies(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """Every reply, in order; the first failure is raised once all have settled, so that
    none is left unretrieved. A caller cancelled meanwhile gives up the rest."""
    results: list[Any] = []
    error: CacheUnavailable | None = None
    try:
        for future in futures:
            try:
                results.append(await future)
            except CacheUnavailable as exc:
                error = error or exc
    except asyncio.CancelledError:
        for future in futures:
            future.cancel()
        raise
    if error is not None:
        raise error
    return results


class RedisCache:
    """Redis-backed cache. A Redis outage degrades to misses, never to a visitor's error.

    It speaks to Redis over one pipelined connection per process (hiredis parses the
    replies): every page view of every service asks for the cart summary, and a general
    client's pool, retries and per-call timeouts cost more CPU than the look-up itself.
    """

    def __init__(self, url: str, prefix: str = "rose-cart:", timeout_seconds: float = 0.5) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"redis", ""}:
            raise ValueError("only redis:// URLs are supported")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._password = unquote(parts.password) if parts.password else None
        self._username = unquote(parts.username) if parts.username else None
        path = parts.path.strip("/")
        self._db = int(path) if path else 0
        self._prefix = prefix
        self._timeout = timeout_seconds
        self._conn: _RedisProtocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future[_RedisProtocol] | None = None

    async def _connection(self) -> _RedisProtocol:
        loop = asyncio.get_running_loop()
        conn = self._conn
        if conn is not None and not conn.closed and self._loop is loop:
            return conn
        if self._connecting is not None and self._loop is loop:
            return await asyncio.shield(self._connecting)
        self._loop, self._conn = loop, None
        self._connecting = loop.create_future()
        connecting = self._connecting
        try:
            conn = await self._connect(loop)
        except BaseException as exc:
            self._connecting = None
            connecting.set_exception(CacheUnavailable(type(exc).__name__))
            connecting.exception()  # retrieved here; waiters get their own copy
            raise CacheUnavailable(type(exc).__name__) from exc
        self._conn, self._connecting = conn, None
        connecting.set_result(conn)
        return conn

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _RedisProtocol:
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: _RedisProtocol(loop, self._timeout), self._host, self._port
            ),
            self._timeout,
        )
        setup: list[tuple[Any, ...]] = []
        if self._password is not None:
            auth = ("AUTH", self._username, self._password) if self._username else None
            setup.append(auth or ("AUTH", self._password))
        if self._db:
            setup.append(("SELECT", self._db))
        try:
            if setup:
                await _replies(conn.send(setup))
        except BaseException:
            conn.abort()
            raise
        return conn

    async def _run(self, *commands: tuple[Any, ...]) -> list[Any]:
        conn = await self._connection()
        return await _replies(conn.send(commands))

    async def get(self, key: str) -> str | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        try:
            (values,) = await self._run(("MGET", *(self._prefix + k for k in keys)))
        except (CacheUnavailable, OSError) as exc:
            log.warning("cache get failed: %s", exc)
            return [None] * len(keys)
        return list(values)

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        await self.set_many({key: value}, ttl_seconds)

    async def set_many(self, items: Mapping[str, str], ttl_seconds: int) -> None:
        """Every item with the same expiry, pipelined: one round trip."""
        if not items:
            return
        try:
            await self._run(
                *(("SET", self._prefix + k, v, "EX", ttl_seconds) for k, v in items.items())
            )
        except (CacheUnavailable, OSError) as exc:
            log.warning("cache set failed: %s", exc)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self._run(("DEL", *(self._prefix + k for k in keys)))
        except (CacheUnavailable, OSError) as exc:
            log.warning("cache delete failed: %s", exc)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
