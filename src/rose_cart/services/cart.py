"""Cart use cases: add, set quantity, remove, adopt on login, show, summarise."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from rose_cart.domain.cart import (
    HARD_MAX_PER_LINE,
    MAX_LINES,
    Cart,
    CartLine,
    PageRef,
    line_maximum,
    parse_quantity,
)
from rose_cart.domain.errors import (
    BadInput,
    CartError,
    EntryNotFound,
    ProductNotFound,
    ProductUnavailable,
    QuantityTooLarge,
    SiblingUnavailable,
    TicketTypeNotFound,
)
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.ids import positive_id
from rose_cart.domain.money import Money
from rose_cart.ports import (
    Cache,
    CalendarEntry,
    CalendarService,
    Clock,
    Product,
    StoredCartItem,
    Ticket,
    UnitOfWorkFactory,
)
from rose_cart.services.calendar_snapshot import dump_pending, load_pending
from rose_cart.services.catalog import Catalog, LocalMemo

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CartChange:
    """What an add or a quantity change left behind, for the visitor's message."""

    product_id: int
    title: str
    quantity: int


@dataclass(frozen=True, slots=True)
class CalendarChange:
    """What removing a booking or changing a ticket quantity left behind."""

    title: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Adoption:
    """What logging in did to the anonymous cart: lines carried over, how many of those
    were merged into lines the user already had, and how many items they held. When the
    events service did not take the bookings, ``bookings_adopted`` is False and
    ``CartService.adopt_bookings`` is owed."""

    moved: int
    merged: int
    items: int = 0
    bookings_adopted: bool = True


def parse_product_id(raw: object) -> int:
    pid = positive_id(raw)
    if pid is None:
        raise ProductNotFound()
    return pid


BOOKING_NOT_IN_CART = "That booking is not in your cart."
TICKETS_NOT_IN_CART = "Those tickets are not in your cart."
EVENTS_DOWN = (
    "The events service is not answering, so we could not change your bookings and "
    "tickets. Please try again in a minute."
)


def ticket_title(ticket: Ticket) -> str:
    return f"{ticket.entry_name} — {ticket.ticket_type}"


def summary_key(identity: CartIdentity) -> str:
    # Not the old "summary:" name: the value now starts with its version, and a worker of
    # the previous release must not serve that as JSON during a rolling deploy.
    return f"cart-summary:{identity.owner().key}"


def summary_version_key(identity: CartIdentity) -> str:
    return f"cart-summary-version:{identity.owner().key}"


def pending_key(identity: CartIdentity) -> str:
    return f"cart-pending:{identity.owner().key}"


def pending_version_key(identity: CartIdentity) -> str:
    return f"cart-pending-version:{identity.owner().key}"


#: A cache entry read under its version: the current version, and the entry's text when it
#: was stored under that version (None: read afresh, then store under that version).
Versioned = tuple[str, str | None]
Pending = tuple[list[CalendarEntry], list[Ticket]]


def _new_version() -> str:
    # Random rather than counted: a counter whose key is evicted or expires starts again,
    # and could come back to the number that a late writer still holds.
    return secrets.token_hex(8)


class CartService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        catalog: Catalog,
        calendar: CalendarService,
        cache: Cache,
        clock: Clock,
        summary_ttl_seconds: int = 300,
    ) -> None:
        self.uow = uow
        self.catalog = catalog
        self.calendar = calendar
        self.cache = cache
        self.clock = clock
        self.summary_ttl = summary_ttl_seconds
        # A version outlives the summaries stored under it (else they go unread before
        # their time), and still goes away for visitors who have gone.
        self.summary_version_ttl = max(2 * summary_ttl_seconds, 3600)
        # Cached text -> the entries and tickets it holds: parsed once per process.
        self._parsed_pending = LocalMemo(max(summary_ttl_seconds, 1), max_entries=5_000)

    # ----------------------------------------------------------------- changes

    async def add(
        self, identity: CartIdentity, product_id: object, quantity: object = 1
    ) -> CartChange:
        """Add to the product's line (making it if new). Raises for bad input; the cart is
        unchanged whenever this raises."""
        pid, qty, product, maximum = await self._addable(identity, product_id, quantity)
        owner = identity.owner()
        # One statement: the upsert checks the line limit itself, only when it inserts.
        async with self.uow(one_statement=True) as tx:
            new_quantity = await tx.carts.add_quantity(
                owner, pid, qty, maximum, self.clock.now(), max_lines=MAX_LINES
            )
        if new_quantity is None:
            raise self._line_full(product, maximum)
        await self.forget_summary(owner, calendar=False)
        return CartChange(pid, product.title, new_quantity)

    async def add_and_show(
        self, identity: CartIdentity, product_id: object, quantity: object = 1
    ) -> tuple[CartChange, Cart]:
        """``add``, and the cart as it is after it (what the JSON API answers with): the
        write and the read of the lines are one statement where the database can."""
        pid, qty, product, maximum = await self._addable(identity, product_id, quantity)
        owner = identity.owner()
        async with self.uow(one_statement=True) as tx:
            new_quantity, stored = await tx.carts.add_and_list(
                owner, pid, qty, maximum, self.clock.now(), max_lines=MAX_LINES
            )
        if new_quantity is None:
            raise self._line_full(product, maximum)
        # The pending bookings' version is not the one this change replaces, and the prices
        # are the products' own: all three go to the cache in one write.
        _, pending, products = await asyncio.gather(
            self.forget_summary(owner, calendar=False),
            self._read_pending_version(owner),
            self.catalog.products([s.product_id for s in stored]),
        )
        cart = await self._cart_of(owner, stored, pending=pending, products=products)
        return CartChange(pid, product.title, new_quantity), cart

    async def _addable(
        self, identity: CartIdentity, product_id: object, quantity: object
    ) -> tuple[int, int, Product, int]:
        """What an add needs before it writes: the product id, the quantity, the product
        and its line maximum. Raises when the add cannot be."""
        pid = parse_product_id(product_id)
        qty = parse_quantity(quantity, allow_zero=False)
        self._need_identity(identity)
        product = await self.catalog.product(pid)
        if product is None:
            raise ProductNotFound()
        if not product.available:
            raise ProductUnavailable(f"{product.title} is not available at the moment.")
        maximum = line_maximum(product.max_per_order)
        if qty > maximum:
            raise QuantityTooLarge(
                f"You can order at most {maximum} of {product.title}.", maximum=maximum
            )
        return pid, qty, product, maximum

    @staticmethod
    def _line_full(product: Product, maximum: int) -> QuantityTooLarge:
        return QuantityTooLarge(
            f"You can order at most {maximum} of {product.title}; your cart already has some.",
            maximum=maximum,
        )

    async def set_quantity(
        self, identity: CartIdentity, product_id: object, quantity: object
    ) -> CartChange:
        """Set a line's quantity; 0 removes it. Raises ProductNotFound when it is not in
        the cart."""
        pid = parse_product_id(product_id)
        qty = parse_quantity(quantity, allow_zero=True)
        owner = identity.owner()
        if not owner.is_known:
            raise ProductNotFound("That product is not in your cart.")
        title = f"Product {pid}"
        if qty > 0:
            product = await self.catalog.product(pid)
            if product is not None:
                title = product.title
                maximum = line_maximum(product.max_per_order)
                if qty > maximum:
                    raise QuantityTooLarge(
                        f"You can order at most {maximum} of {product.title}.", maximum=maximum
                    )
            else:
                raise ProductNotFound()
        async with self.uow() as tx:
            changed = await tx.carts.set_quantity(owner, pid, qty, self.clock.now())
        if not changed:
            raise ProductNotFound("That product is not in your cart.")
        await self.forget_summary(owner, calendar=False)
        return CartChange(pid, title, qty)

    async def remove(self, identity: CartIdentity, product_id: object) -> CartChange:
        return await self.set_quantity(identity, product_id, 0)

    async def remove_booking(self, identity: CartIdentity, entry_id: object) -> CalendarChange:
        """Take a pending booking out of the cart. Raises EntryNotFound when it is not in the
        visitor's cart, SiblingUnavailable when the events service cannot be asked."""
        eid = positive_id(entry_id)
        owner = identity.owner()
        if eid is None or not owner.is_known:
            raise EntryNotFound(BOOKING_NOT_IN_CART)
        entries = await self._events(self.calendar.pending_entries(owner))
        entry = next((e for e in entries if e.id == eid), None)
        if entry is None:
            raise EntryNotFound(BOOKING_NOT_IN_CART)
        removed = await self._events_change(owner, self.calendar.remove_pending_entry(owner, eid))
        if not removed:
            raise EntryNotFound(BOOKING_NOT_IN_CART)
        await self.forget_summary(owner)
        return CalendarChange(entry.name, 0)

    async def set_tickets(
        self, identity: CartIdentity, ticket_type_id: object, quantity: object
    ) -> CalendarChange:
        """Set how many tickets of a type already in the cart it holds; 0 removes them.

        Raises TicketTypeNotFound when the visitor has none of that type in their cart,
        SoldOut (the events service's message, naming the event and how many are left) when
        more are asked for than are left, SiblingUnavailable when the events service cannot
        be asked; the cart is unchanged whenever this raises.
        """
        tid = positive_id(ticket_type_id)
        qty = parse_quantity(quantity, allow_zero=True)
        if qty > HARD_MAX_PER_LINE:
            raise QuantityTooLarge(
                f"You can have at most {HARD_MAX_PER_LINE} tickets of one kind.",
                maximum=HARD_MAX_PER_LINE,
            )
        user_id = identity.owner().user_id
        if tid is None or user_id is None:  # tickets need a login: none in an anonymous cart
            raise TicketTypeNotFound(TICKETS_NOT_IN_CART)
        owner = CartIdentity(user_id=user_id)
        tickets = await self._events(self.calendar.pending_tickets(user_id))
        mine = [t for t in tickets if t.ticket_type_id == tid]
        if not mine:
            raise TicketTypeNotFound(TICKETS_NOT_IN_CART)
        if qty == len(mine):
            return CalendarChange(ticket_title(mine[0]), qty)
        now = await self._events_change(owner, self.calendar.set_pending_tickets(user_id, tid, qty))
        await self.forget_summary(owner)
        return CalendarChange(ticket_title(mine[0]), now)

    async def remove_tickets(
        self, identity: CartIdentity, ticket_type_id: object
    ) -> CalendarChange:
        return await self.set_tickets(identity, ticket_type_id, 0)

    @staticmethod
    async def _events(call: Awaitable[T]) -> T:
        """A read from the events service before a change: when it is down, say so in its
        own words."""
        try:
            return await call
        except SiblingUnavailable as exc:
            raise SiblingUnavailable(EVENTS_DOWN) from exc

    async def _events_change(self, owner: CartIdentity, call: Awaitable[T]) -> T:
        """A change made by the events service. When its answer is lost, the change may have
        happened all the same: the cached summary is dropped either way."""
        try:
            return await call
        except SiblingUnavailable as exc:
            await self.forget_summary(owner)
            raise SiblingUnavailable(EVENTS_DOWN) from exc

    async def adopt(self, user_id: int, session_id: str) -> Adoption:
        """Move an anonymous visitor's lines and orders to the user who just logged in, in
        one transaction, then ask the events service to adopt the bookings.

        The same product in both carts merges by adding quantities, capped at the line
        maximum. An order whose idempotency key the user already used gives the key up (the
        user's order keeps it) and is adopted all the same. A sibling that is down stops
        nothing: without the market, merged lines are capped at the hard maximum; without
        the events service, ``bookings_adopted`` is False. Running it again is harmless.
        """
        if not session_id:
            return Adoption(0, 0)
        anon, user = CartIdentity(session_id=session_id), CartIdentity(user_id=user_id)
        async with self.uow() as tx:
            session_lines = await tx.carts.live_items(anon)
        maxima = await self._line_maxima([line.product_id for line in session_lines])
        async with self.uow() as tx:
            await tx.orders.adopt(session_id, user_id, self.clock.now())
            merged = await tx.carts.move_to_user(session_id, user_id, maxima, self.clock.now())
        bookings_adopted = await self._adopt_bookings(user_id, session_id)
        await self.forget_summary(anon, user)
        return Adoption(
            moved=len(session_lines),
            merged=merged,
            items=sum(line.quantity for line in session_lines),
            bookings_adopted=bookings_adopted,
        )

    async def adopt_bookings(self, user_id: int, session_id: str) -> bool:
        """Ask the events service again for the bookings an adoption could not move; False
        while it is still unreachable. Harmless once they have moved."""
        if not await self._adopt_bookings(user_id, session_id):
            return False
        await self.forget_summary(
            CartIdentity(session_id=session_id), CartIdentity(user_id=user_id)
        )
        return True

    async def _adopt_bookings(self, user_id: int, session_id: str) -> bool:
        try:
            await self.calendar.adopt_for_user(user_id, session_id)
        except CartError as exc:
            log.warning("bookings not adopted for user %s yet: %s", user_id, exc.code)
            return False
        return True

    async def _line_maxima(self, product_ids: list[int]) -> dict[int, int]:
        if not product_ids:
            return {}
        try:
            products = await self.catalog.products(product_ids)
        except CartError as exc:
            # Logging in must not wait for the market: merge up to the hard cap instead.
            log.warning("line maxima unknown while adopting: %s", exc.code)
            products = {}
        return {
            pid: line_maximum(products[pid].max_per_order if pid in products else None)
            for pid in product_ids
        }

    async def forget_summary(self, *identities: CartIdentity, calendar: bool = True) -> None:
        """Make every summary cached so far for these identities unreadable, and (unless
        ``calendar`` is off: a change of product lines only) what the cart keeps of their
        pending bookings and tickets; call it after the change has committed. A read still in
        flight stores what it read under the old version, which nobody reads."""
        versions: dict[str, str] = {}
        for identity in identities:
            if identity.owner().is_known:
                versions[summary_version_key(identity)] = _new_version()
                if calendar:
                    versions[pending_version_key(identity)] = _new_version()
        if versions:
            await self.cache.set_many(versions, self.summary_version_ttl)

    # ----------------------------------------------------------------- reading

    async def cart(self, identity: CartIdentity, *, fresh_prices: bool = False) -> Cart:
        """The visitor's cart with current prices: a fixed number of queries and sibling
        calls whatever its size. ``fresh_prices`` reads them from the market itself."""
        owner = identity.owner()
        if not owner.is_known:
            return Cart()
        if fresh_prices:
            return await self._cart_of(owner, await self._stored(owner), fresh_prices=True)
        # The pending bookings' version need only be read before the events service is.
        stored, pending = await asyncio.gather(
            self._stored(owner), self._read_pending_version(owner)
        )
        return await self._cart_of(owner, stored, pending=pending)

    async def _stored(self, owner: CartIdentity) -> list[StoredCartItem]:
        async with self.uow(one_statement=True) as tx:  # one SELECT: no transaction needed
            return await tx.carts.live_items(owner)

    async def _cart_of(
        self,
        owner: CartIdentity,
        stored: list[StoredCartItem],
        *,
        fresh_prices: bool = False,
        pending: Versioned | None = None,
        products: dict[int, Product] | None = None,
    ) -> Cart:
        """The cart made of these stored lines, with the products' current prices and the
        owner's bookings and tickets: those kept under ``pending`` (the cache's version of
        them, read before this) while it is current, else the events service's.
        ``fresh_prices`` asks the market and the events service themselves; ``products``
        are the stored lines' products, when already read."""
        lines: list[CartLine] = []
        if stored:
            if products is None:
                products = await self.catalog.products(
                    [s.product_id for s in stored], fresh=fresh_prices
                )
            pages = await self.catalog.pages_for_products(list(products.values()))
            for item in stored:
                product = products.get(item.product_id)
                if product is None:
                    # Withdrawn from the market: nothing to show or charge. The stored line
                    # stays, so it comes back if the product does.
                    continue
                lines.append(
                    CartLine(
                        kind="product",
                        title=product.title,
                        quantity=item.quantity,
                        unit_price=Money(product.unit_price, product.currency),
                        page=pages.get(product.id),
                        product_id=product.id,
                        slug=product.slug,
                        image=product.image,
                        available=product.available,
                        line_id=item.id,
                    )
                )
        if fresh_prices or pending is None:
            entries, tickets = await self._ask_pending(owner)
        else:
            entries, tickets = await self._pending(owner, pending)
        lines.extend(await self._calendar_lines(entries, tickets))
        return Cart(tuple(lines))

    async def _ask_pending(self, owner: CartIdentity) -> Pending:
        entries = await self.calendar.pending_entries(owner)
        tickets = await self.calendar.pending_tickets(owner.user_id) if owner.user_id else []
        return entries, tickets

    async def _read_pending_version(self, owner: CartIdentity) -> Versioned:
        return (await self._read_versioned((pending_version_key(owner), pending_key(owner))))[0]

    async def _pending(self, owner: CartIdentity, versioned: Versioned) -> Pending:
        """The owner's pending bookings and tickets: as kept, when they were kept under the
        current version; else asked of the events service and kept under that version.

        The events service tells the cart when it changes them (``cart-changed``), and the
        cart's own changes of them (removals, claims, releases, adoption) replace the
        version once done, so what is kept is never served after a change."""
        version, text = versioned
        if text is not None:
            loaded: Pending | None = self._parsed_pending.get(text)
            if loaded is None:
                try:
                    loaded = load_pending(text)
                except (ValueError, KeyError, TypeError):
                    loaded = None  # not ours to read (another release's): ask again
                else:
                    self._parsed_pending.put(text, loaded)
            if loaded is not None:
                return loaded
        entries, tickets = await self._ask_pending(owner)
        await self.cache.set(
            pending_key(owner), f"{version} {dump_pending(entries, tickets)}", self.summary_ttl
        )
        return entries, tickets

    async def _calendar_lines(
        self, entries: list[CalendarEntry], tickets: list[Ticket]
    ) -> list[CartLine]:
        page_ids = sorted(
            {
                c
                for c in [e.calendar_container_id for e in entries]
                + [t.calendar_container_id for t in tickets]
                if c is not None
            }
        )
        posts = await self.catalog.posts(page_ids) if page_ids else {}

        def page(container_id: int | None) -> PageRef | None:
            post = posts.get(container_id) if container_id is not None else None
            return PageRef(post.id, post.slug, post.title) if post else None

        lines = [
            CartLine(
                kind="booking",
                title=e.name,
                quantity=1,
                unit_price=Money(e.cost, e.currency),
                page=page(e.calendar_container_id),
                entry_id=e.id,
                start_at=e.start_at,
            )
            for e in entries
        ]
        lines += [
            CartLine(
                kind="ticket",
                title=ticket_title(same[0]),
                quantity=len(same),
                unit_price=Money(same[0].cost, same[0].currency),
                page=page(same[0].calendar_container_id),
                entry_id=same[0].entry_id,
                ticket_type_id=same[0].ticket_type_id,
                start_at=same[0].start_at,
            )
            for same in _by_ticket_type(tickets)
        ]
        return lines

    async def summary(self, identity: CartIdentity) -> dict[str, object]:
        """Counts and totals for the cart icon of every page of every service."""
        loaded: dict[str, object] = json.loads(await self.summary_json(identity))
        return loaded

    async def summary_json(self, identity: CartIdentity) -> str:
        """The summary as JSON text, as cached: a cache hit is one cache round trip, touches
        neither the database nor a sibling, and is not even decoded.

        The cached text carries the owner's summary version as it was before the cart was
        read; it is served only while that is still the current version. Every change sets a
        new version once committed (``forget_summary``), so a read that began before a
        change can store its summary late but never have it served after the change.
        """
        owner = identity.owner()
        if not owner.is_known:
            return _EMPTY_SUMMARY
        version, text = await self._cached_summary(owner)
        if text is None:
            text = await self._store_summary(owner, version, await self.cart(owner))
        return text

    async def cart_and_summary(self, identity: CartIdentity) -> tuple[Cart, dict[str, object]]:
        """The cart and its summary for a page that shows both (the cart and its header
        badge): the cart is read once, and when the cached summary is out of date (right
        after a change) this read stores the new one, under the same rule as
        ``summary_json``."""
        owner = identity.owner()
        if not owner.is_known:
            return Cart(), json.loads(_EMPTY_SUMMARY)
        # Both versions are read before the cart is, in one round trip.
        (version, text), pending = await self._read_versioned(
            (summary_version_key(owner), summary_key(owner)),
            (pending_version_key(owner), pending_key(owner)),
        )
        cart = await self._cart_of(owner, await self._stored(owner), pending=pending)
        if text is None:
            text = await self._store_summary(owner, version, cart)
        loaded: dict[str, object] = json.loads(text)
        return cart, loaded

    async def _cached_summary(self, owner: CartIdentity) -> Versioned:
        """The owner's current summary version and, when it is still valid, the cached
        summary text (None: read the cart, then ``_store_summary`` under that version)."""
        return (await self._read_versioned((summary_version_key(owner), summary_key(owner))))[0]

    async def _read_versioned(self, *pairs: tuple[str, str]) -> list[Versioned]:
        """For each (version key, key): the current version and, when the entry was stored
        under it, the entry's text (the version is stored with the entry, before a space).
        One cache round trip for all of them."""
        values = await self.cache.get_many([key for pair in pairs for key in pair])
        read: list[Versioned] = []
        started: dict[str, str] = {}
        for n, (version_key, _) in enumerate(pairs):
            version, cached = values[2 * n], values[2 * n + 1]
            if version is not None and cached is not None:
                tag, _, text = cached.partition(" ")
                if tag == version:
                    read.append((version, text))
                    continue
            if version is None:
                # First read, or the version was evicted: start one before reading, so that
                # a change committed after this read replaces it.
                version = _new_version()
                started[version_key] = version
            read.append((version, None))
        if started:
            await self.cache.set_many(started, self.summary_version_ttl)
        return read

    async def _store_summary(self, owner: CartIdentity, version: str, cart: Cart) -> str:
        """Cache the summary of a cart read after ``version`` was current; served only while
        it still is."""
        text = json.dumps(summarise(cart), sort_keys=True)
        await self.cache.set(summary_key(owner), f"{version} {text}", self.summary_ttl)
        return text

    @staticmethod
    def _need_identity(identity: CartIdentity) -> None:
        if not identity.is_known:
            raise BadInput("No cart identity: cookies must be enabled.")


def _by_ticket_type(tickets: list[Ticket]) -> list[list[Ticket]]:
    """The port returns one Ticket per ticket; the cart shows one line per ticket type (of
    one entry, at one price), in the order the types first appear."""
    groups: dict[tuple[object, ...], list[Ticket]] = {}
    for t in tickets:
        key = (t.entry_id, t.ticket_type_id, t.ticket_type, t.cost, t.currency)
        groups.setdefault(key, []).append(t)
    return list(groups.values())


def _total(values: dict[str, Money]) -> str:
    if not values:
        return "0.00"
    if len(values) == 1:
        return next(iter(values.values())).as_str()
    return "mixed"


def summarise(cart: Cart) -> dict[str, object]:
    return {
        "count": cart.count,
        "total": _total(cart.totals),
        "currency": next(iter(cart.totals)) if len(cart.totals) == 1 else None,
        "product_count": cart.count_of("product"),
        "product_total": _total(cart.total_of("product")),
        "calendar_count": cart.count_of("booking"),
        "calendar_total": _total(cart.total_of("booking")),
        "ticket_count": cart.count_of("ticket"),
        "ticket_total": _total(cart.total_of("ticket")),
    }


_EMPTY_SUMMARY = json.dumps(summarise(Cart()), sort_keys=True)
