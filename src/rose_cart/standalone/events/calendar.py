"""The reference events sibling: calendars, entries, bookings and tickets in its own tables.

``ReferenceCalendar`` implements the cart's ``CalendarService`` port (the contract lives in
``rose_cart.ports``) and the events service's own operations that its pages and JSON API
use (list entries, book, buy tickets). It has its own engine and transactions, as the
separate service it stands for would; the cart reaches it only through the port.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from rose_cart.adapters.clock import SystemClock
from rose_cart.adapters.db.engine import make_engine, open_pool
from rose_cart.adapters.db.repositories import rows_by_name
from rose_cart.adapters.db.uow import HotConnections, SqlConnection
from rose_cart.domain.cart import HARD_MAX_PER_LINE, parse_quantity
from rose_cart.domain.errors import (
    BadInput,
    CartChanged,
    Conflict,
    EntryNotFound,
    InvalidQuantity,
    LoginRequired,
    QuantityTooLarge,
    SiblingUnavailable,
    SoldOut,
    TicketTypeNotFound,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import quantize
from rose_cart.ports import UNINTERRUPTED, CalendarEntry, Clock, Ticket
from rose_cart.standalone.events.tables import (
    bookings,
    calendars,
    claim_items,
    claims,
    entries,
    ticket_types,
    tickets,
)

#: Booking states in which an order holds the booking.
HELD_BOOKING = ("ordered", "provisional", "confirmed")
#: Ticket states that count as sold; pending tickets (in a cart) do not.
SOLD = ("reserved", "confirmed", "checked_in")
ENTRIES, TICKETS = "entries", "tickets"


class NotBookable(Conflict):
    code = "not_bookable"
    message = "That date cannot be booked; it sells tickets instead."


class EventOver(Conflict):
    code = "event_over"
    message = "That has already taken place."


@dataclass(frozen=True, slots=True)
class TicketTypeView:
    id: int
    name: str
    description: str
    cost: Decimal
    capacity: int
    #: How many are left: capacity less those sold (pending tickets are not sold).
    available: int


@dataclass(frozen=True, slots=True)
class EntryView:
    """A calendar entry as the events pages and JSON show it."""

    id: int
    slug: str
    name: str
    description: str
    start_at: datetime
    end_at: datetime | None
    cost: Decimal
    currency: str
    bookable: bool
    calendar_name: str
    page_post_id: int | None
    ticket_types: tuple[TicketTypeView, ...] = ()

    @property
    def ticketed(self) -> bool:
        return bool(self.ticket_types)

    @property
    def available(self) -> int:
        return sum(t.available for t in self.ticket_types)


@dataclass(frozen=True, slots=True)
class TicketView:
    ticket_id: int
    entry_id: int
    ticket_type_id: int
    state: str
    order_id: int | None


@dataclass(frozen=True, slots=True)
class Booked:
    entry: EntryView
    #: False when the visitor already had this booking in their cart.
    created: bool


@dataclass(frozen=True, slots=True)
class NewTicketType:
    name: str
    cost: Decimal
    capacity: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class NewEntry:
    slug: str
    name: str
    start_at: datetime
    end_at: datetime | None
    cost: Decimal
    currency: str = "GBP"
    bookable: bool = False
    description: str = ""
    ticket_types: tuple[NewTicketType, ...] = ()


@dataclass(frozen=True, slots=True)
class TicketsAdded:
    #: Ticket type id -> how many were put in the cart now / are in it in all.
    added: dict[int, int]
    in_cart: dict[int, int]
    names: dict[int, str]


def sold_out(entry_name: str, type_name: str, entry_id: int, type_id: int, left: int) -> SoldOut:
    """The contract's SoldOut: names the entry and how many are left."""
    if left <= 0:
        message = f"Sorry, “{type_name}” tickets for {entry_name} have sold out: none are left."
    elif left == 1:
        message = f"Sorry, only 1 “{type_name}” ticket is left for {entry_name}."
    else:
        message = f"Sorry, only {left} “{type_name}” tickets are left for {entry_name}."
    return SoldOut(message, entry_id=entry_id, ticket_type_id=type_id, left=max(left, 0))


def _owned_by(identity: CartIdentity) -> ColumnElement[bool]:
    owner = identity.owner()
    if owner.user_id is not None:
        return bookings.c.user_id == owner.user_id
    return and_(bookings.c.user_id.is_(None), bookings.c.session_id == owner.session_id)


#: The events sibling's own pool (as the engine's default), and how long a kept connection
#: may be idle before it is pinged.
_POOL_SIZE = 20
_PING_AFTER = 10.0


def _owned_by_params(user_owned: bool) -> ColumnElement[bool]:
    """The owner as bound parameters (``user_id``, ``session_id``)."""
    if user_owned:
        return bookings.c.user_id == bindparam("user_id")
    return and_(bookings.c.user_id.is_(None), bookings.c.session_id == bindparam("session_id"))


def _owner_values(identity: CartIdentity) -> dict[str, Any]:
    owner = identity.owner()
    return {"user_id": owner.user_id, "session_id": owner.session_id}


# The statements every checkout and cart read makes are built once for the process: each
# call then finds its compiled SQL, and on PostgreSQL runs it on the driver itself.
@functools.cache
def _pending_entries_statement(user_owned: bool) -> Any:
    return (
        select(entries, calendars.c.page_post_id, bookings.c.state.label("booking_state"))
        .select_from(bookings)
        .join(entries, entries.c.id == bookings.c.entry_id)
        .join(calendars, calendars.c.id == entries.c.calendar_id)
        .where(_owned_by_params(user_owned), bookings.c.state == "pending")
        .order_by(entries.c.start_at, bookings.c.id)
    )


@functools.cache
def _nothing_claimed_statement(dialect: str) -> Any:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_(claims)
        .values({c: bindparam(c.name, type_=c.type) for c in claims.c})
        .on_conflict_do_nothing(index_elements=["order_id", "kind"])
        .returning(claims.c.order_id)
    )


def _page_calendars(page_post_id: int | None) -> Any:
    """The ids of the calendars of a page (None: calendars that belong to no page)."""
    where = (
        calendars.c.page_post_id.is_(None)
        if page_post_id is None
        else calendars.c.page_post_id == page_post_id
    )
    return select(calendars.c.id).where(where)


def _container(page_post_id: int | None) -> tuple[str, int | None]:
    return ("page", page_post_id) if page_post_id is not None else ("site", None)


class ReferenceCalendar:
    """The events sibling in-process. ``down`` makes every call fail as an unreachable
    events service would."""

    def __init__(
        self, engine: AsyncEngine, clock: Clock | None = None, *, hot_connections: int = 0
    ) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.down = False
        # SQLite has one writer: take transactions one at a time rather than be told
        # "locked" (as the cart does on SQLite).
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else None
        )
        # Single statements on PostgreSQL run on connections kept for them, as the cart's do.
        self._hot = (
            HotConnections(self._autocommit, hot_connections, _PING_AFTER)
            if self._autocommit is not None and hot_connections > 0
            else None
        )

    @classmethod
    def for_url(cls, database_url: str, clock: Clock | None = None) -> ReferenceCalendar:
        """A calendar with an engine of its own on ``database_url``; ``aclose`` ends it.
        Half its pool is kept for single statements."""
        return cls(
            make_engine(database_url, pool_size=_POOL_SIZE),
            clock,
            hot_connections=_POOL_SIZE // 2,
        )

    async def open(self) -> None:
        """Open its connections before serving, as the cart opens its own pool."""
        await open_pool(self.engine)

    async def aclose(self) -> None:
        if self._hot is not None:
            await self._hot.aclose()
        await self.engine.dispose()

    def _check(self) -> None:
        if self.down:
            raise SiblingUnavailable("The events service is not answering.")

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[SqlConnection]:
        """One transaction; committed on a clean exit. Statements are shielded from a
        visitor's disconnect, and the end of the transaction too (see ``SqlConnection``)."""
        if self._lock is not None:
            await self._lock.acquire()
        try:
            conn = await self.engine.connect()
            try:
                await conn.begin()
                statements = SqlConnection(conn)
                try:
                    yield statements
                except BaseException:
                    await _whole(self._end(statements, conn, commit=False))
                    raise
                await _whole(self._end(statements, conn, commit=True))
            finally:
                await _whole(conn.close())
        finally:
            if self._lock is not None:
                self._lock.release()

    @asynccontextmanager
    async def _one_statement(self) -> AsyncIterator[SqlConnection]:
        """A single statement, which needs no transaction: on PostgreSQL it runs without
        BEGIN and COMMIT (two round trips fewer); SQLite takes it as ``_tx`` does."""
        if self._autocommit is None:
            async with self._tx() as statements:
                yield statements
            return
        if self._hot is not None:
            held = await self._hot.acquire()
            kept = SqlConnection(held.conn, autocommit=True, driver=held.driver)
            try:
                yield kept
            finally:
                # The steady case gives it back at once; else once its statement is over.
                if not (kept.over() and self._hot.release_now(held)):
                    await _whole(self._given_back(kept, held))
            return
        conn = await self._autocommit.connect()
        try:
            read = SqlConnection(conn, autocommit=True)
            try:
                yield read
            finally:
                await _whole(read.settle())
        finally:
            await _whole(conn.close())

    async def _given_back(self, kept: SqlConnection, held: Any) -> None:
        assert self._hot is not None
        try:
            await kept.settle()
        finally:
            await self._hot.release(held)

    @staticmethod
    async def _end(statements: SqlConnection, conn: Any, *, commit: bool) -> None:
        await statements.settle()
        if commit:
            await conn.commit()
        else:
            await conn.rollback()

    async def _retrying(self, work: Any) -> None:
        """Run ``work(conn)`` in a transaction; when a concurrent call for the same order
        recorded its claim first (a unique key met), run it again: it then finds that claim."""
        for attempt in range(3):
            try:
                async with self._tx() as conn:
                    await work(conn)
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    # ------------------------------------------------------------------ locking

    @staticmethod
    async def _lock_ticket_types(conn: SqlConnection, type_ids: Iterable[int]) -> None:
        """Hold the ticket types until the transaction ends, so what is counted as sold
        cannot change before the transaction has written its tickets.

        PostgreSQL: the types' rows, locked in id order (so two claims never wait on each
        other in a circle). SQLite: a write to them, which takes the database's only write
        lock first, before anything is counted.
        """
        ids = sorted(set(type_ids))
        if not ids:
            return
        if conn.dialect.name == "postgresql":
            await conn.execute(
                select(ticket_types.c.id)
                .where(ticket_types.c.id.in_(ids))
                .order_by(ticket_types.c.id)
                .with_for_update()
            )
        else:
            await conn.execute(
                update(ticket_types)
                .where(ticket_types.c.id.in_(ids))
                .values(capacity=ticket_types.c.capacity)
            )

    @staticmethod
    async def _sold(conn: SqlConnection, type_ids: Iterable[int]) -> Counter[int]:
        ids = sorted(set(type_ids))
        if not ids:
            return Counter()
        rows = await conn.execute(
            select(tickets.c.ticket_type_id, func.count())
            .where(tickets.c.ticket_type_id.in_(ids), tickets.c.state.in_(SOLD))
            .group_by(tickets.c.ticket_type_id)
        )
        return Counter({int(r[0]): int(r[1]) for r in rows})

    @staticmethod
    async def _types(conn: SqlConnection, type_ids: Iterable[int]) -> dict[int, Any]:
        ids = sorted(set(type_ids))
        if not ids:
            return {}
        rows = await conn.execute(
            select(
                ticket_types.c.id,
                ticket_types.c.name,
                ticket_types.c.capacity,
                ticket_types.c.entry_id,
                entries.c.name.label("entry_name"),
                entries.c.start_at,
                entries.c.end_at,
            )
            .join(entries, entries.c.id == ticket_types.c.entry_id)
            .where(ticket_types.c.id.in_(ids))
        )
        return {int(r.id): r for r in rows}

    async def _check_capacity(self, conn: SqlConnection, wanted: Mapping[int, int]) -> None:
        """Raise SoldOut for the first type (in id order) with fewer left than ``wanted``.
        Call it with the types locked."""
        types = await self._types(conn, wanted)
        sold = await self._sold(conn, wanted)
        for type_id in sorted(wanted):
            info = types[type_id]
            left = int(info.capacity) - sold[type_id]
            if wanted[type_id] > left:
                raise sold_out(info.entry_name, info.name, int(info.entry_id), type_id, left)

    # ------------------------------------------------------------------ reading

    async def upcoming(self, limit: int = 200) -> list[EntryView]:
        """Entries that have not ended yet, soonest first."""
        self._check()
        now = self.clock.now()
        ends = func.coalesce(entries.c.end_at, entries.c.start_at)
        async with self._tx() as conn:
            return await self._entry_views(
                conn, (ends >= now,), order=(entries.c.start_at, entries.c.id), limit=limit
            )

    async def entry(self, entry_id: int) -> EntryView | None:
        self._check()
        async with self._tx() as conn:
            found = await self._entry_views(conn, (entries.c.id == entry_id,))
        return found[0] if found else None

    async def _entry_views(
        self,
        conn: SqlConnection,
        where: Sequence[ColumnElement[bool]],
        order: Sequence[Any] = (),
        limit: int | None = None,
    ) -> list[EntryView]:
        stmt = (
            select(
                entries,
                calendars.c.name.label("calendar_name"),
                calendars.c.page_post_id,
            )
            .join(calendars, calendars.c.id == entries.c.calendar_id)
            .where(*where)
            .order_by(*order)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = list(await conn.execute(stmt))
        if not rows:
            return []
        ids = [int(r.id) for r in rows]
        type_rows = list(
            await conn.execute(
                select(ticket_types)
                .where(ticket_types.c.entry_id.in_(ids))
                .order_by(ticket_types.c.position, ticket_types.c.id)
            )
        )
        sold = await self._sold(conn, [int(t.id) for t in type_rows])
        by_entry: dict[int, list[TicketTypeView]] = {}
        currency = {int(r.id): str(r.currency) for r in rows}
        for t in type_rows:
            by_entry.setdefault(int(t.entry_id), []).append(
                TicketTypeView(
                    id=int(t.id),
                    name=t.name,
                    description=t.description or "",
                    cost=quantize(t.cost, currency[int(t.entry_id)]),
                    capacity=int(t.capacity),
                    available=max(int(t.capacity) - sold[int(t.id)], 0),
                )
            )
        return [
            EntryView(
                id=int(r.id),
                slug=r.slug,
                name=r.name,
                description=r.description or "",
                start_at=r.start_at,
                end_at=r.end_at,
                cost=quantize(r.cost, r.currency),
                currency=r.currency,
                bookable=bool(r.bookable),
                calendar_name=r.calendar_name,
                page_post_id=r.page_post_id,
                ticket_types=tuple(by_entry.get(int(r.id), ())),
            )
            for r in rows
        ]

    async def pending_booking(self, identity: CartIdentity, entry_id: int) -> bool:
        """Whether the visitor has this entry booked in their cart."""
        self._check()
        if not identity.owner().is_known:
            return False
        async with self._tx() as conn:
            row = await conn.execute(
                select(bookings.c.id).where(
                    _owned_by(identity),
                    bookings.c.entry_id == entry_id,
                    bookings.c.state == "pending",
                )
            )
            return row.first() is not None

    async def pending_ticket_counts(self, user_id: int, entry_id: int) -> dict[int, int]:
        """The user's pending tickets of the entry, by ticket type."""
        self._check()
        async with self._tx() as conn:
            rows = await conn.execute(
                select(tickets.c.ticket_type_id, func.count())
                .where(
                    tickets.c.user_id == user_id,
                    tickets.c.entry_id == entry_id,
                    tickets.c.state == "pending",
                )
                .group_by(tickets.c.ticket_type_id)
            )
            return {int(r[0]): int(r[1]) for r in rows}

    async def tickets_of(self, user_id: int) -> list[TicketView]:
        """Every ticket the user holds or has in their cart (not those taken out of it)."""
        self._check()
        async with self._tx() as conn:
            rows = await conn.execute(
                select(tickets)
                .where(tickets.c.user_id == user_id, tickets.c.state != "cancelled")
                .order_by(tickets.c.id)
            )
            return [
                TicketView(int(r.id), int(r.entry_id), int(r.ticket_type_id), r.state, r.order_id)
                for r in rows
            ]

    # ------------------------------------------------------------------ the events pages

    async def book(self, identity: CartIdentity, entry_id: int) -> Booked:
        """Book a place: a pending booking in the visitor's cart. Booking again what is
        already in the cart changes nothing."""
        self._check()
        owner = identity.owner()
        if not owner.is_known:
            raise BadInput("No cart identity: cookies must be enabled.")
        entry = await self.entry(entry_id)
        if entry is None:
            raise EntryNotFound()
        if not entry.bookable:
            raise NotBookable(f"{entry.name} cannot be booked; it sells tickets instead.")
        if _ended(entry, self.clock.now()):
            raise EventOver(f"{entry.name} has already taken place.")
        now = self.clock.now()
        for _ in range(2):
            try:
                async with self._tx() as conn:
                    existing = await conn.execute(
                        select(bookings.c.id).where(
                            _owned_by(owner),
                            bookings.c.entry_id == entry_id,
                            bookings.c.state == "pending",
                        )
                    )
                    if existing.first() is not None:
                        return Booked(entry, created=False)
                    await conn.execute(
                        insert(bookings).values(
                            entry_id=entry_id,
                            user_id=owner.user_id,
                            session_id=None if owner.user_id is not None else owner.session_id,
                            state="pending",
                            order_id=None,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                return Booked(entry, created=True)
            except IntegrityError:
                continue  # a double click booked it at the same moment: look again
        return Booked(entry, created=False)

    async def add_tickets(
        self, user_id: int | None, entry_id: int, quantities: Mapping[int, object]
    ) -> TicketsAdded:
        """Put tickets of the entry's types in the user's cart (pending), all or none.
        Needs a logged-in user. Raises ``SoldOut`` when the user's tickets of a type would
        be more than are left."""
        self._check()
        if user_id is None:
            raise LoginRequired("Sign in to buy tickets.")
        entry = await self.entry(entry_id)
        if entry is None:
            raise EntryNotFound()
        known = {t.id for t in entry.ticket_types}
        wanted: dict[int, int] = {}
        for type_id, raw in quantities.items():
            if type_id not in known:
                raise TicketTypeNotFound()
            quantity = parse_quantity(raw, allow_zero=True)
            if quantity:
                wanted[type_id] = quantity
        if not wanted:
            raise InvalidQuantity("Choose how many tickets you would like.")
        now = self.clock.now()
        if _ended(entry, now):
            raise EventOver(f"{entry.name} has already taken place.")
        totals: dict[int, int] = {}
        async with self._tx() as conn:
            await self._lock_ticket_types(conn, wanted)
            mine = await self._pending_of(conn, user_id, wanted)
            for type_id, quantity in wanted.items():
                totals[type_id] = len(mine.get(type_id, [])) + quantity
                if totals[type_id] > HARD_MAX_PER_LINE:
                    raise QuantityTooLarge(
                        f"You can have at most {HARD_MAX_PER_LINE} tickets of one type in "
                        "your cart.",
                        maximum=HARD_MAX_PER_LINE,
                    )
            await self._check_capacity(conn, totals)
            await conn.execute(
                insert(tickets),
                [
                    {
                        "ticket_type_id": type_id,
                        "entry_id": entry_id,
                        "user_id": user_id,
                        "state": "pending",
                        "order_id": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for type_id, quantity in sorted(wanted.items())
                    for _ in range(quantity)
                ],
            )
        names = {t.id: t.name for t in entry.ticket_types}
        return TicketsAdded(dict(sorted(wanted.items())), totals, names)

    @staticmethod
    async def _pending_of(
        conn: SqlConnection, user_id: int, type_ids: Iterable[int]
    ) -> dict[int, list[Any]]:
        rows = await conn.execute(
            select(tickets.c.id, tickets.c.ticket_type_id, tickets.c.order_id)
            .where(
                tickets.c.user_id == user_id,
                tickets.c.state == "pending",
                tickets.c.ticket_type_id.in_(sorted(set(type_ids))),
            )
            .order_by(tickets.c.id)
        )
        found: dict[int, list[Any]] = {}
        for r in rows:
            found.setdefault(int(r.ticket_type_id), []).append(r)
        return found

    # ------------------------------------------------------------------ the cart's port

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]:
        self._check()
        if not identity.owner().is_known:
            return []
        stmt = _pending_entries_statement(identity.owner().user_id is not None)
        async with self._one_statement() as conn:
            rows = await rows_by_name(conn, stmt, _owner_values(identity))
        return [_calendar_entry(r) for r in rows]

    async def pending_tickets(self, user_id: int) -> list[Ticket]:
        self._check()
        async with self._tx() as conn:
            return await self._tickets_where(
                conn, tickets.c.user_id == user_id, tickets.c.state == "pending"
            )

    async def remove_pending_entry(self, identity: CartIdentity, entry_id: int) -> bool:
        self._check()
        if not identity.owner().is_known:
            return False
        async with self._tx() as conn:
            result = await conn.execute(
                update(bookings)
                .where(
                    _owned_by(identity),
                    bookings.c.entry_id == entry_id,
                    bookings.c.state == "pending",
                )
                .values(state="cancelled", updated_at=self.clock.now())
            )
            return bool(result.rowcount)

    async def set_pending_tickets(self, user_id: int, ticket_type_id: int, quantity: int) -> int:
        self._check()
        wanted = parse_quantity(quantity, allow_zero=True)
        if wanted > HARD_MAX_PER_LINE:
            raise QuantityTooLarge(
                f"You can have at most {HARD_MAX_PER_LINE} tickets of one type in your cart.",
                maximum=HARD_MAX_PER_LINE,
            )
        now = self.clock.now()
        async with self._tx() as conn:
            info = (await self._types(conn, [ticket_type_id])).get(ticket_type_id)
            if info is None:
                raise TicketTypeNotFound()
            await self._lock_ticket_types(conn, [ticket_type_id])
            mine = (await self._pending_of(conn, user_id, [ticket_type_id])).get(ticket_type_id, [])
            if wanted > len(mine):
                if _ended_row(info, now):
                    raise EventOver(f"{info.entry_name} has already taken place.")
                await self._check_capacity(conn, {ticket_type_id: wanted})
                await conn.execute(
                    insert(tickets),
                    [
                        {
                            "ticket_type_id": ticket_type_id,
                            "entry_id": int(info.entry_id),
                            "user_id": user_id,
                            "state": "pending",
                            "order_id": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for _ in range(wanted - len(mine))
                    ],
                )
            elif wanted < len(mine):
                # Newest first, keeping those an earlier order gave back as long as possible.
                mine.sort(key=lambda r: (r.order_id is not None, -int(r.id)))
                drop = [int(r.id) for r in mine[: len(mine) - wanted]]
                await conn.execute(
                    update(tickets)
                    .where(tickets.c.id.in_(drop), tickets.c.state == "pending")
                    .values(state="cancelled", updated_at=now)
                )
        return wanted

    async def claim_entries_for_order(
        self,
        order_id: int,
        identity: CartIdentity,
        page_post_id: int | None = None,
        *,
        entry_ids: Collection[int] | None = None,
    ) -> None:
        self._check()
        owner = identity.owner()
        nothing = entry_ids is not None and not entry_ids
        if nothing and await self._record_nothing_claimed(order_id, ENTRIES, owner, page_post_id):
            return  # else claimed before: what it took is taken again, as below

        async def work(conn: SqlConnection) -> None:
            header = await self._claim_header(conn, order_id, ENTRIES)
            if header is not None:
                await self._reclaim_entries(conn, order_id, header, owner)
                return
            now = self.clock.now()
            taken: list[int] = []
            if owner.is_known:
                conditions = [
                    _owned_by(owner),
                    bookings.c.state == "pending",
                    bookings.c.entry_id.in_(
                        select(entries.c.id).where(
                            entries.c.calendar_id.in_(_page_calendars(page_post_id))
                        )
                    ),
                ]
                if entry_ids is not None:
                    conditions.append(bookings.c.entry_id.in_(sorted(set(entry_ids))))
                result = await conn.execute(
                    update(bookings)
                    .where(*conditions)
                    .values(state="ordered", order_id=order_id, updated_at=now)
                    .returning(bookings.c.id, bookings.c.entry_id)
                )
                rows = list(result)
                if entry_ids is not None and {int(r.entry_id) for r in rows} != set(entry_ids):
                    raise CartChanged()  # rolls the claim back: nothing is taken
                taken = [int(r.id) for r in rows]
            elif entry_ids:
                raise CartChanged()
            await self._record_claim(conn, order_id, ENTRIES, owner, page_post_id, taken)

        await self._retrying(work)

    async def claim_tickets_for_order(
        self,
        order_id: int,
        user_id: int,
        page_post_id: int | None = None,
        *,
        ticket_counts: Mapping[int, int] | None = None,
    ) -> None:
        self._check()
        wanted = {t: n for t, n in (ticket_counts or {}).items() if n > 0}
        if (
            ticket_counts is not None
            and not wanted
            and await self._record_nothing_claimed(
                order_id, TICKETS, CartIdentity(user_id=user_id), page_post_id
            )
        ):
            return  # else claimed before: what it took is taken again, as below

        async def work(conn: SqlConnection) -> None:
            header = await self._claim_header(conn, order_id, TICKETS)
            if header is not None:
                await self._reclaim_tickets(conn, order_id, header)
                return
            in_page = and_(
                tickets.c.user_id == user_id,
                tickets.c.state == "pending",
                tickets.c.entry_id.in_(
                    select(entries.c.id).where(
                        entries.c.calendar_id.in_(_page_calendars(page_post_id))
                    )
                ),
            )
            if ticket_counts is None:
                type_ids = [
                    int(r[0])
                    for r in await conn.execute(
                        select(tickets.c.ticket_type_id).where(in_page).distinct()
                    )
                ]
            else:
                type_ids = sorted(wanted)
            await self._lock_ticket_types(conn, type_ids)
            # Someone may have claimed for this order while we waited for the lock.
            header = await self._claim_header(conn, order_id, TICKETS)
            if header is not None:
                await self._reclaim_tickets(conn, order_id, header)
                return
            rows: list[Any] = []
            if type_ids:
                rows = list(
                    await conn.execute(
                        select(tickets.c.id, tickets.c.ticket_type_id)
                        .where(in_page, tickets.c.ticket_type_id.in_(type_ids))
                        .order_by(tickets.c.id)
                    )
                )
            if ticket_counts is not None:
                # The ones put in the cart first, as many as the order was priced with.
                of_type: dict[int, list[Any]] = {}
                for r in rows:
                    of_type.setdefault(int(r.ticket_type_id), []).append(r)
                if any(len(of_type.get(t, [])) < n for t, n in wanted.items()):
                    raise CartChanged()
                rows = [r for t, n in sorted(wanted.items()) for r in of_type[t][:n]]
            await self._check_capacity(conn, Counter(int(r.ticket_type_id) for r in rows))
            ids = [int(r.id) for r in rows]
            if ids:
                result = await conn.execute(
                    update(tickets)
                    .where(tickets.c.id.in_(ids), tickets.c.state == "pending")
                    .values(state="reserved", order_id=order_id, updated_at=self.clock.now())
                )
                assert result.rowcount == len(ids), "tickets changed under the lock"
            await self._record_claim(
                conn, order_id, TICKETS, CartIdentity(user_id=user_id), page_post_id, ids
            )

        await self._retrying(work)

    async def _claim_header(self, conn: SqlConnection, order_id: int, kind: str) -> Any:
        result = await conn.execute(
            select(claims).where(claims.c.order_id == order_id, claims.c.kind == kind)
        )
        return result.first()

    def _claim_row(
        self, order_id: int, kind: str, owner: CartIdentity, page_post_id: int | None
    ) -> dict[str, Any]:
        return {
            "order_id": order_id,
            "kind": kind,
            "user_id": owner.user_id,
            "session_id": None if owner.user_id is not None else owner.session_id,
            "page_post_id": page_post_id,
            "created_at": self.clock.now(),
        }

    async def _record_nothing_claimed(
        self, order_id: int, kind: str, owner: CartIdentity, page_post_id: int | None
    ) -> bool:
        """Record that the order claims nothing of this kind, in one statement; False when
        the order has claimed before (its record stands, and says what it took)."""
        stmt = _nothing_claimed_statement(self.engine.dialect.name)
        row = self._claim_row(order_id, kind, owner, page_post_id)
        async with self._one_statement() as conn:
            made = await rows_by_name(conn, stmt, row)
        return bool(made)

    async def _record_claim(
        self,
        conn: SqlConnection,
        order_id: int,
        kind: str,
        owner: CartIdentity,
        page_post_id: int | None,
        item_ids: Sequence[int],
    ) -> None:
        await conn.execute(
            insert(claims).values(self._claim_row(order_id, kind, owner, page_post_id))
        )
        if item_ids:
            await conn.execute(
                insert(claim_items),
                [{"order_id": order_id, "kind": kind, "item_id": i} for i in item_ids],
            )

    async def _claimed(
        self, conn: SqlConnection, order_id: int, kind: str, table: Any
    ) -> list[Any]:
        """What the order's claim recorded, as the rows are now."""
        rows = await conn.execute(
            select(claim_items.c.item_id, table)
            .join(table, table.c.id == claim_items.c.item_id)
            .where(claim_items.c.order_id == order_id, claim_items.c.kind == kind)
            .order_by(claim_items.c.item_id)
        )
        return list(rows)

    async def _replace_claimed(
        self, conn: SqlConnection, order_id: int, kind: str, old: int, new: int
    ) -> None:
        await conn.execute(
            update(claim_items)
            .where(
                claim_items.c.order_id == order_id,
                claim_items.c.kind == kind,
                claim_items.c.item_id == old,
            )
            .values(item_id=new)
        )

    async def _reclaim_entries(
        self, conn: SqlConnection, order_id: int, header: Any, owner: CartIdentity
    ) -> None:
        """Take back exactly the bookings the order recorded: those released to the cart,
        and a booking of the same entry in place of one that has gone since (made for the
        order's owner now: an anonymous order may have been adopted at login since)."""
        if not owner.is_known:
            owner = CartIdentity(user_id=header.user_id, session_id=header.session_id).owner()
        now = self.clock.now()
        for row in await self._claimed(conn, order_id, ENTRIES, bookings):
            if row.order_id == order_id and row.state in HELD_BOOKING:
                continue
            if row.order_id == order_id and row.state == "pending":
                await conn.execute(
                    update(bookings)
                    .where(bookings.c.id == row.id, bookings.c.state == "pending")
                    .values(state="ordered", updated_at=now)
                )
                continue
            result = await conn.execute(
                insert(bookings)
                .values(
                    entry_id=row.entry_id,
                    user_id=owner.user_id,
                    session_id=None if owner.user_id is not None else owner.session_id,
                    state="ordered",
                    order_id=order_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(bookings.c.id)
            )
            await self._replace_claimed(
                conn, order_id, ENTRIES, int(row.id), int(result.scalar_one())
            )

    async def _reclaim_tickets(self, conn: SqlConnection, order_id: int, header: Any) -> None:
        """Take back exactly the tickets the order recorded — those released to the cart,
        and a new ticket of the same type for each that has gone since — if enough are
        left; else SoldOut and nothing taken."""

        def held(row: Any) -> bool:
            return bool(row.order_id == order_id and row.state in SOLD)

        if all(held(r) for r in await self._claimed(conn, order_id, TICKETS, tickets)):
            return
        recorded = await self._claimed(conn, order_id, TICKETS, tickets)
        await self._lock_ticket_types(
            conn, [int(r.ticket_type_id) for r in recorded if not held(r)]
        )
        recorded = await self._claimed(conn, order_id, TICKETS, tickets)
        missing = [r for r in recorded if not held(r)]
        if not missing:
            return
        await self._check_capacity(conn, Counter(int(r.ticket_type_id) for r in missing))
        now = self.clock.now()
        for row in missing:
            if row.order_id == order_id and row.state == "pending":
                await conn.execute(
                    update(tickets)
                    .where(tickets.c.id == row.id, tickets.c.state == "pending")
                    .values(state="reserved", updated_at=now)
                )
                continue
            result = await conn.execute(
                insert(tickets)
                .values(
                    ticket_type_id=row.ticket_type_id,
                    entry_id=row.entry_id,
                    user_id=header.user_id,
                    state="reserved",
                    order_id=order_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(tickets.c.id)
            )
            await self._replace_claimed(
                conn, order_id, TICKETS, int(row.id), int(result.scalar_one())
            )

    async def confirm_entries_for_order(self, order_id: int) -> None:
        self._check()
        async with self._tx() as conn:
            await conn.execute(
                update(bookings)
                .where(bookings.c.order_id == order_id, bookings.c.state == "ordered")
                .values(state="provisional", updated_at=self.clock.now())
            )

    async def confirm_tickets_for_order(self, order_id: int) -> None:
        self._check()
        async with self._tx() as conn:
            await conn.execute(
                update(tickets)
                .where(tickets.c.order_id == order_id, tickets.c.state == "reserved")
                .values(state="confirmed", updated_at=self.clock.now())
            )

    async def release_for_order(self, order_id: int) -> None:
        """Claims not yet paid go back to the owner's cart, still naming the order, so a
        claim for that order takes back exactly these. Paid ones stay."""
        self._check()
        now = self.clock.now()

        async def work(conn: SqlConnection) -> None:
            ordered = await conn.execute(
                select(bookings).where(
                    bookings.c.order_id == order_id, bookings.c.state == "ordered"
                )
            )
            for row in ordered:
                # One pending booking of an entry per visitor: one made since this order
                # was placed gives way to the order's own.
                owner = CartIdentity(user_id=row.user_id, session_id=row.session_id)
                await conn.execute(
                    update(bookings)
                    .where(
                        _owned_by(owner),
                        bookings.c.entry_id == row.entry_id,
                        bookings.c.state == "pending",
                    )
                    .values(state="cancelled", updated_at=now)
                )
                await conn.execute(
                    update(bookings)
                    .where(bookings.c.id == row.id, bookings.c.state == "ordered")
                    .values(state="pending", updated_at=now)
                )
            await conn.execute(
                update(tickets)
                .where(tickets.c.order_id == order_id, tickets.c.state == "reserved")
                .values(state="pending", updated_at=now)
            )

        await self._retrying(work)

    async def entries_for_order(self, order_id: int) -> list[CalendarEntry]:
        self._check()
        async with self._tx() as conn:
            rows = await conn.execute(
                select(
                    entries,
                    calendars.c.page_post_id,
                    bookings.c.state.label("booking_state"),
                )
                .select_from(bookings)
                .join(entries, entries.c.id == bookings.c.entry_id)
                .join(calendars, calendars.c.id == entries.c.calendar_id)
                .where(bookings.c.order_id == order_id, bookings.c.state != "cancelled")
                .order_by(entries.c.start_at, bookings.c.id)
            )
            return [_calendar_entry(r._mapping) for r in rows]

    async def tickets_for_order(self, order_id: int) -> list[Ticket]:
        self._check()
        async with self._tx() as conn:
            return await self._tickets_where(
                conn, tickets.c.order_id == order_id, tickets.c.state != "cancelled"
            )

    async def _tickets_where(
        self, conn: SqlConnection, *where: ColumnElement[bool]
    ) -> list[Ticket]:
        rows = await conn.execute(
            select(
                tickets.c.id,
                tickets.c.entry_id,
                tickets.c.ticket_type_id,
                tickets.c.state,
                entries.c.name.label("entry_name"),
                entries.c.currency,
                ticket_types.c.name.label("type_name"),
                ticket_types.c.cost,
                calendars.c.page_post_id,
            )
            .select_from(tickets)
            .join(ticket_types, ticket_types.c.id == tickets.c.ticket_type_id)
            .join(entries, entries.c.id == tickets.c.entry_id)
            .join(calendars, calendars.c.id == entries.c.calendar_id)
            .where(*where)
            .order_by(
                entries.c.start_at, ticket_types.c.position, tickets.c.ticket_type_id, tickets.c.id
            )
        )
        found = []
        for r in rows:
            kind, container = _container(r.page_post_id)
            found.append(
                Ticket(
                    id=int(r.id),
                    entry_id=int(r.entry_id),
                    entry_name=r.entry_name,
                    ticket_type=r.type_name,
                    ticket_type_id=int(r.ticket_type_id),
                    cost=quantize(r.cost, r.currency),
                    currency=r.currency,
                    calendar_container_type=kind,
                    calendar_container_id=container,
                    state=r.state,
                )
            )
        return found

    async def adopt_for_user(self, user_id: int, session_id: str) -> None:
        """The session's bookings become the user's; a pending one of an entry the user
        already has in their cart is dropped (the cart merges them). Harmless to repeat."""
        self._check()
        if not session_id:
            return
        now = self.clock.now()
        theirs = and_(bookings.c.session_id == session_id, bookings.c.user_id.is_(None))

        async def work(conn: SqlConnection) -> None:
            already = select(bookings.c.entry_id).where(
                bookings.c.user_id == user_id, bookings.c.state == "pending"
            )
            await conn.execute(
                update(bookings)
                .where(theirs, bookings.c.state == "pending", bookings.c.entry_id.in_(already))
                .values(state="cancelled", updated_at=now)
            )
            await conn.execute(
                update(bookings)
                .where(theirs)
                .values(user_id=user_id, session_id=None, updated_at=now)
            )

        await self._retrying(work)

    # ------------------------------------------------------------------ set-up

    async def ensure_calendar(self, slug: str, name: str, page_post_id: int | None) -> int:
        """The calendar with this slug, made when missing; returns its id."""

        async def make(conn: SqlConnection) -> int:
            result = await conn.execute(
                insert(calendars)
                .values(
                    slug=slug, name=name, page_post_id=page_post_id, created_at=self.clock.now()
                )
                .returning(calendars.c.id)
            )
            return int(result.scalar_one())

        return await self._found_or_made(
            select(calendars.c.id).where(calendars.c.slug == slug), make
        )

    async def ensure_entry(self, calendar_id: int, new: NewEntry) -> int:
        """The entry with ``new.slug``, made with its ticket types when missing."""

        async def make(conn: SqlConnection) -> int:
            entry_id = int(
                (
                    await conn.execute(
                        insert(entries)
                        .values(
                            calendar_id=calendar_id,
                            slug=new.slug,
                            name=new.name,
                            description=new.description,
                            start_at=new.start_at,
                            end_at=new.end_at,
                            cost=quantize(new.cost, new.currency),
                            currency=new.currency,
                            bookable=new.bookable,
                            created_at=self.clock.now(),
                        )
                        .returning(entries.c.id)
                    )
                ).scalar_one()
            )
            if new.ticket_types:
                await conn.execute(
                    insert(ticket_types),
                    [
                        {
                            "entry_id": entry_id,
                            "name": t.name,
                            "description": t.description,
                            "cost": quantize(t.cost, new.currency),
                            "capacity": t.capacity,
                            "position": position,
                        }
                        for position, t in enumerate(new.ticket_types)
                    ],
                )
            return entry_id

        return await self._found_or_made(
            select(entries.c.id).where(entries.c.slug == new.slug), make
        )

    async def _found_or_made(
        self, find: Any, make: Callable[[SqlConnection], Awaitable[int]]
    ) -> int:
        """The id ``find`` selects, or ``make``'s when there is none."""

        async def once() -> int:
            async with self._tx() as conn:
                found = (await conn.execute(find)).first()
                return int(found[0]) if found is not None else await make(conn)

        try:
            return await once()
        except IntegrityError:
            # Workers starting together on a fresh database race to make the same row;
            # the loser's insert meets the unique slug, and its second look finds the row.
            return await once()


async def _whole(step: Awaitable[Any]) -> None:
    """Await ``step`` to its end: shielded from a cancelled request, unless nothing will
    cancel this one (``UNINTERRUPTED``)."""
    if UNINTERRUPTED.get():
        await step
    else:
        await asyncio.shield(step)


def _ended(entry: EntryView, now: datetime) -> bool:
    return (entry.end_at or entry.start_at) < now


def _ended_row(row: Any, now: datetime) -> bool:
    return bool((row.end_at or row.start_at) < now)


def _calendar_entry(row: Mapping[str, Any]) -> CalendarEntry:
    """A booked entry from its row, read by name (a driver record or a row's mapping)."""
    kind, container = _container(row["page_post_id"])
    return CalendarEntry(
        id=int(row["id"]),
        name=row["name"],
        start_at=row["start_at"],
        end_at=row["end_at"],
        cost=quantize(row["cost"], row["currency"]),
        currency=row["currency"],
        calendar_container_type=kind,
        calendar_container_id=container,
        state=row["booking_state"],
    )


__all__ = [
    "Booked",
    "EntryView",
    "EventOver",
    "NewEntry",
    "NewTicketType",
    "NotBookable",
    "ReferenceCalendar",
    "TicketTypeView",
    "TicketsAdded",
    "TicketView",
]
