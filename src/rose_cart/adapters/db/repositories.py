"""Repositories over one open connection. They never commit: the unit of work does."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from rose_cart.adapters.db.tables import (
    cart_items,
    order_items,
    orders,
    outbox,
    page_configs,
    payment_attempts,
    refunds,
)
from rose_cart.domain.cart import HARD_MAX_PER_LINE
from rose_cart.domain.errors import TooManyLines
from rose_cart.domain.events import Activity, order_created
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import Money, quantize
from rose_cart.domain.order import (
    DEFAULT_VALID_FOR,
    OPEN_ATTEMPT,
    PAYABLE,
    AttemptStatus,
    Command,
    Order,
    OrderStatus,
    PaymentAttempt,
)
from rose_cart.ports import (
    AdminOrderFilter,
    ConcurrentChange,
    NewOrderItem,
    OutboxRecord,
    StoredCartItem,
    StoredOrderItem,
    StoredPageConfig,
    StoredRefund,
)

if TYPE_CHECKING:
    from rose_cart.adapters.db.uow import Statements

_LIVE_USER = text("deleted_at IS NULL AND user_id IS NOT NULL")
_LIVE_SESSION = text("deleted_at IS NULL AND user_id IS NULL")
_KEYED_USER = text("idempotency_key IS NOT NULL AND user_id IS NOT NULL")
_KEYED_SESSION = text("idempotency_key IS NOT NULL AND user_id IS NULL")


def _insert_for(conn: Statements, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both SQLite and PostgreSQL do)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _owned_by(table: Any, identity: CartIdentity) -> ColumnElement[bool]:
    if identity.user_id is not None:
        return table.c.user_id == identity.user_id
    return and_(table.c.user_id.is_(None), table.c.session_id == identity.session_id)


def _owner_of(table: Any, user_owned: bool) -> ColumnElement[bool]:
    """The owner's live lines, the owner given as bound parameters."""
    if user_owned:
        return and_(table.c.user_id == bindparam("user_id"), table.c.deleted_at.is_(None))
    return and_(
        table.c.user_id.is_(None),
        table.c.session_id == bindparam("session_id"),
        table.c.deleted_at.is_(None),
    )


@functools.cache
def _add_statement(dialect: str, user_owned: bool, limited: bool = False) -> Any:
    """The add-to-cart upsert, built once: add is the hottest write, and building this
    statement (its ``excluded`` columns above all) cost more than running it.

    ``limited``: a new line is inserted only while the owner has fewer than ``max_lines``
    live lines. The count runs only when the product has no live line yet (an add to an
    existing line never counts), inside the same statement: one round trip.
    """
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = bindparam("now", type_=cart_items.c.created_at.type)
    if limited:
        live = cart_items.alias("live")
        has_line = (
            select(literal(1))
            .where(_owner_of(live, user_owned), live.c.product_id == bindparam("product_id"))
            .exists()
        )
        lines = select(func.count()).where(_owner_of(live, user_owned)).scalar_subquery()
        stmt = insert_(cart_items).from_select(
            ["user_id", "session_id", "product_id", "quantity", "created_at", "updated_at"],
            select(
                bindparam("user_id", type_=Integer),
                bindparam("session_id", type_=String),
                bindparam("product_id", type_=Integer),
                bindparam("quantity", type_=Integer),
                now,
                now,
            ).where(or_(has_line, lines < bindparam("max_lines", type_=Integer))),
        )
    else:
        stmt = insert_(cart_items).values(
            user_id=bindparam("user_id"),
            session_id=bindparam("session_id"),
            product_id=bindparam("product_id"),
            quantity=bindparam("quantity"),
            created_at=now,
            updated_at=bindparam("now", type_=cart_items.c.updated_at.type),
        )
    merged = cart_items.c.quantity + stmt.excluded.quantity
    return stmt.on_conflict_do_update(
        index_elements=["user_id" if user_owned else "session_id", "product_id"],
        index_where=_LIVE_USER if user_owned else _LIVE_SESSION,
        set_={
            "quantity": merged,
            "updated_at": bindparam("now", type_=cart_items.c.updated_at.type),
        },
        where=merged <= bindparam("maximum"),
    ).returning(
        cart_items.c.id, cart_items.c.product_id, cart_items.c.quantity, cart_items.c.created_at
    )


@functools.cache
def _add_and_list_statement(user_owned: bool) -> Any:
    """PostgreSQL: the limited upsert and the owner's live lines after it, in one
    statement. The listing's snapshot predates the upsert, so the line it wrote comes from
    its RETURNING and its older row is left out."""
    added = _add_statement("postgresql", user_owned, True).cte("added")
    others = select(
        cart_items.c.id,
        cart_items.c.product_id,
        cart_items.c.quantity,
        cart_items.c.created_at,
        literal(False).label("added"),
    ).where(
        _owner_of(cart_items, user_owned),
        cart_items.c.id.not_in(select(added.c.id)),
    )
    mine = select(
        added.c.id,
        added.c.product_id,
        added.c.quantity,
        added.c.created_at,
        literal(True).label("added"),
    )
    both = union_all(mine, others).subquery()
    return select(both).order_by(both.c.created_at, both.c.id)


@functools.cache
def _live_items_statement(user_owned: bool) -> Any:
    return (
        select(
            cart_items.c.id,
            cart_items.c.product_id,
            cart_items.c.quantity,
            cart_items.c.created_at,
        )
        .where(_owner_of(cart_items, user_owned))
        .order_by(cart_items.c.created_at, cart_items.c.id)
    )


def _stored(row: Any) -> StoredCartItem:
    """A line from a row read by name (a driver record or a row mapping)."""
    created = row["created_at"]
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    return StoredCartItem(row["id"], row["product_id"], row["quantity"], created)


async def rows_by_name(
    conn: Statements, stmt: Any, params: dict[str, Any]
) -> list[Mapping[str, Any]]:
    """The rows of a statement that lives for the process, read by name: straight on the
    driver where the connection allows it (``Statements.direct``)."""
    if conn.direct:
        return await conn.fetch_direct(stmt, params)
    return [r._mapping for r in await conn.execute(stmt, params)]


def _owner_params(identity: CartIdentity) -> dict[str, Any]:
    user_owned = identity.user_id is not None
    return {
        "user_id": identity.user_id,
        "session_id": None if user_owned else identity.session_id,
    }


class SqlCartRepository:
    def __init__(self, conn: Statements) -> None:
        self.conn = conn

    async def live_items(self, identity: CartIdentity) -> list[StoredCartItem]:
        stmt = _live_items_statement(identity.user_id is not None)
        return [_stored(r) for r in await rows_by_name(self.conn, stmt, _owner_params(identity))]

    async def add_quantity(
        self,
        identity: CartIdentity,
        product_id: int,
        quantity: int,
        maximum: int,
        now: datetime,
        *,
        max_lines: int | None = None,
    ) -> int | None:
        user_owned = identity.user_id is not None
        stmt = _add_statement(self.conn.dialect.name, user_owned, max_lines is not None)
        params = self._add_params(identity, product_id, quantity, maximum, now, max_lines)
        added_rows = await rows_by_name(self.conn, stmt, params)
        added = int(added_rows[0]["quantity"]) if added_rows else None
        if added is None and max_lines is not None:
            await self._refused(identity, product_id)
        return added

    async def add_and_list(
        self,
        identity: CartIdentity,
        product_id: int,
        quantity: int,
        maximum: int,
        now: datetime,
        *,
        max_lines: int,
    ) -> tuple[int | None, list[StoredCartItem]]:
        if self.conn.dialect.name != "postgresql":
            added = await self.add_quantity(
                identity, product_id, quantity, maximum, now, max_lines=max_lines
            )
            return added, await self.live_items(identity)
        user_owned = identity.user_id is not None
        params = self._add_params(identity, product_id, quantity, maximum, now, max_lines)
        stmt = _add_and_list_statement(user_owned)
        rows = await rows_by_name(self.conn, stmt, params)
        quantity_now = next((int(r["quantity"]) for r in rows if r["added"]), None)
        if quantity_now is None:
            await self._refused(identity, product_id)
        return quantity_now, [_stored(r) for r in rows]

    @staticmethod
    def _add_params(
        identity: CartIdentity,
        product_id: int,
        quantity: int,
        maximum: int,
        now: datetime,
        max_lines: int | None,
    ) -> dict[str, Any]:
        params = _owner_params(identity)
        params.update(product_id=product_id, quantity=quantity, now=now, maximum=maximum)
        if max_lines is not None:
            params["max_lines"] = max_lines
        return params

    async def _refused(self, identity: CartIdentity, product_id: int) -> None:
        """Why a limited add wrote nothing: the line is full (return, the caller says so)
        or the cart has no room for a new line. Only refused adds come here."""
        has_line = (
            await self.conn.execute(
                select(cart_items.c.id).where(
                    _owned_by(cart_items, identity),
                    cart_items.c.product_id == product_id,
                    cart_items.c.deleted_at.is_(None),
                )
            )
        ).first()
        if has_line is None:
            raise TooManyLines()

    async def set_quantity(
        self, identity: CartIdentity, product_id: int, quantity: int, now: datetime
    ) -> bool:
        values: dict[str, Any] = {"updated_at": now}
        if quantity == 0:
            values["deleted_at"] = now
        else:
            values["quantity"] = quantity
        result = await self.conn.execute(
            update(cart_items)
            .where(
                _owned_by(cart_items, identity),
                cart_items.c.product_id == product_id,
                cart_items.c.deleted_at.is_(None),
            )
            .values(**values)
        )
        return bool(result.rowcount)

    async def move_to_user(
        self, session_id: str, user_id: int, maxima: dict[int, int], now: datetime
    ) -> int:
        session_rows = (
            await self.conn.execute(
                select(cart_items.c.id, cart_items.c.product_id, cart_items.c.quantity)
                .where(
                    _owned_by(cart_items, CartIdentity(session_id=session_id)),
                    cart_items.c.deleted_at.is_(None),
                )
                .with_for_update()
            )
        ).all()
        if not session_rows:
            return 0
        user_rows = {
            r.product_id: r
            for r in (
                await self.conn.execute(
                    select(cart_items.c.id, cart_items.c.product_id, cart_items.c.quantity)
                    .where(
                        cart_items.c.user_id == user_id,
                        cart_items.c.deleted_at.is_(None),
                        cart_items.c.product_id.in_([r.product_id for r in session_rows]),
                    )
                    .with_for_update()
                )
            )
        }
        merged = 0
        for row in session_rows:
            existing = user_rows.get(row.product_id)
            if existing is None:
                await self.conn.execute(
                    update(cart_items)
                    .where(cart_items.c.id == row.id)
                    .values(user_id=user_id, updated_at=now)
                )
                continue
            # Both rows are locked, so the sum computed here is still the sum when written. A
            # line added since the maxima were looked up gets the hard cap.
            cap = maxima.get(row.product_id, HARD_MAX_PER_LINE)
            await self.conn.execute(
                update(cart_items)
                .where(cart_items.c.id == existing.id)
                .values(quantity=min(existing.quantity + row.quantity, cap), updated_at=now)
            )
            await self.conn.execute(
                update(cart_items)
                .where(cart_items.c.id == row.id)
                .values(deleted_at=now, updated_at=now)
            )
            merged += 1
        return merged

    async def subtract_ordered(
        self, lines: Sequence[tuple[int, int]], order_id: int, now: datetime
    ) -> int:
        ordered: dict[int, int] = {}
        for item_id, quantity in lines:
            ordered[item_id] = ordered.get(item_id, 0) + quantity
        if not ordered:
            return 0
        # One statement, so each line is read and changed under its row lock: a quantity
        # raised or lowered in another tab meanwhile is the one subtracted from. A line used
        # up keeps its last quantity (the table allows only positive ones) and leaves the
        # cart as ordered.
        taken = case(ordered, value=cart_items.c.id, else_=0)
        used_up = cart_items.c.quantity <= taken
        result = await self.conn.execute(
            update(cart_items)
            .where(cart_items.c.id.in_(list(ordered)), cart_items.c.deleted_at.is_(None))
            .values(
                quantity=case(
                    (used_up, cart_items.c.quantity), else_=cart_items.c.quantity - taken
                ),
                deleted_at=case(
                    (used_up, literal(now, cart_items.c.deleted_at.type)),
                    else_=cart_items.c.deleted_at,
                ),
                order_id=case((used_up, order_id), else_=cart_items.c.order_id),
                updated_at=now,
            )
        )
        return int(result.rowcount)


def _order(row: Mapping[str, Any], attempts: list[PaymentAttempt] | None = None) -> Order:
    """An order from its row, read by name (a driver record or a row's mapping)."""
    return Order(
        id=row["id"],
        status=OrderStatus(row["status"]),
        user_id=row["user_id"],
        session_id=row["session_id"],
        page_id=row["page_id"],
        page_slug=row["page_slug"],
        page_title=row["page_title"],
        currency=row["currency"],
        total=quantize(row["total"], row["currency"]),
        webhook_token=row["webhook_token"],
        idempotency_key=row["idempotency_key"],
        cart_fingerprint=row["cart_fingerprint"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        paid_at=row["paid_at"],
        needs_refund=bool(row["needs_refund"]),
        attention=row["attention"],
        refunded=quantize(row["refunded"] or 0, row["currency"]),
        version=row["version"],
        attempts=attempts if attempts is not None else [],
    )


def _attempt(row: Mapping[str, Any]) -> PaymentAttempt:
    return PaymentAttempt(
        id=row["id"],
        order_id=row["order_id"],
        number=row["number"],
        status=AttemptStatus(row["status"]),
        amount=quantize(row["amount"], row["currency"]),
        currency=row["currency"],
        reference=row["reference"] or "",
        account=row["account"],
        merchant_code=row["merchant_code"],
        provider_checkout_id=row["provider_checkout_id"],
        hosted_url=row["hosted_url"],
        transaction_id=row["transaction_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        # Attempts made before attempts had an end were SumUp's 30-minute sessions.
        valid_until=row["valid_until"] or row["created_at"] + DEFAULT_VALID_FOR,
        unreadable_since=row["unreadable_since"],
        key_token=row["api_key_encrypted"],
    )


#: What saving an order changes in its row (``_order_values``).
_ORDER_CHANGES = (
    "status",
    "paid_at",
    "needs_refund",
    "attention",
    "refunded",
    "updated_at",
    "version",
)


def _order_values(order: Order) -> dict[str, Any]:
    """What saving an order writes to its row (the version moved on by one)."""
    return {
        "status": order.status.value,
        "paid_at": order.paid_at,
        "needs_refund": order.needs_refund,
        "attention": order.attention,
        "refunded": order.refunded,
        "updated_at": order.updated_at,
        "version": order.version + 1,
    }


def _new_attempt_values(attempt: PaymentAttempt) -> dict[str, Any]:
    """A new attempt's row, but for its order's id."""
    return {
        "number": attempt.number,
        "amount": attempt.amount,
        "currency": attempt.currency,
        "account": attempt.account,
        "merchant_code": attempt.merchant_code,
        "api_key_encrypted": attempt.key_token,
        "created_at": attempt.created_at,
        **_attempt_values(attempt),
    }


#: What a saved attempt may change (``_attempt_values``).
_ATTEMPT_CHANGES = (
    "status",
    "reference",
    "provider_checkout_id",
    "hosted_url",
    "transaction_id",
    "valid_until",
    "unreadable_since",
    "updated_at",
)


def _attempt_values(attempt: PaymentAttempt) -> dict[str, Any]:
    return {
        "status": attempt.status.value,
        "reference": attempt.reference or None,
        "provider_checkout_id": attempt.provider_checkout_id,
        "hosted_url": attempt.hosted_url,
        "transaction_id": attempt.transaction_id,
        "valid_until": attempt.valid_until,
        "unreadable_since": attempt.unreadable_since,
        "updated_at": attempt.updated_at,
    }


def _refund(row: Row[Any]) -> StoredRefund:
    return StoredRefund(
        id=row.id,
        order_id=row.order_id,
        attempt_id=row.attempt_id,
        amount=quantize(row.amount, row.currency),
        currency=row.currency,
        status=row.status,
        requested_by=row.requested_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        error=row.error,
    )


#: Orders the reconciler watches: unpaid ones, and any with a checkout that could still
#: take money (an unreadable one of an expired order, say).
_WATCHED_STATUSES = [s.value for s in PAYABLE | {OrderStatus.CLAIMING}]
_OPEN_ATTEMPTS = [s.value for s in OPEN_ATTEMPT]


# The statements of checkout and payment are built once: a statement object that lives
# for the process keeps its cache key, so each call finds the compiled SQL without building
# the statement and hashing it again. Values travel as bound parameters.
_ORDER_BY_ID = select(orders).where(orders.c.id == bindparam("order_id"))
_ORDER_BY_ID_LOCKED = _ORDER_BY_ID.with_for_update()
_ATTEMPTS_OF_ORDER = (
    select(payment_attempts)
    .where(payment_attempts.c.order_id == bindparam("order_id"))
    .order_by(payment_attempts.c.number)
)
_ITEMS_OF_ORDER = (
    select(order_items)
    .where(order_items.c.order_id == bindparam("order_id"))
    .order_by(order_items.c.id)
)
# The columns set are the keys of the parameters given; the guard's values are named apart.
_SAVE_ORDER = update(orders).where(
    orders.c.id == bindparam("guard_id"), orders.c.version == bindparam("guard_version")
)
_SAVE_ATTEMPT = update(payment_attempts).where(
    payment_attempts.c.id == bindparam("guard_id"),
    payment_attempts.c.order_id == bindparam("guard_order_id"),
)
_NEW_ATTEMPT = insert(payment_attempts).returning(payment_attempts.c.id)


# ``save`` of an order with one attempt as one PostgreSQL statement: the order's guarded
# UPDATE in a CTE, and the attempt's INSERT or UPDATE taking its order id from that CTE,
# so nothing is written unless the guard held. Parameters: the guard's, ``o_<column>`` for
# the order, ``a_<column>`` for the attempt.
def _set_from(table: Any, prefix: str, names: Sequence[str]) -> dict[Any, Any]:
    """Each named column set from the parameter ``<prefix><name>``, of the column's type."""
    return {table.c[n]: bindparam(f"{prefix}{n}", type_=table.c[n].type) for n in names}


_ORDER_SAVED = (
    update(orders)
    .where(orders.c.id == bindparam("guard_id"), orders.c.version == bindparam("guard_version"))
    .values(_set_from(orders, "o_", _ORDER_CHANGES))
    .returning(orders.c.id)
    .cte("saved")
)
_NEW_ATTEMPT_COLUMNS = [c for c in payment_attempts.c if c.name not in {"id", "order_id"}]
_SAVE_WITH_NEW_ATTEMPT = (
    insert(payment_attempts)
    .from_select(
        ["order_id", *[c.name for c in _NEW_ATTEMPT_COLUMNS]],
        select(
            _ORDER_SAVED.c.id,
            *[bindparam(f"a_{c.name}", type_=c.type) for c in _NEW_ATTEMPT_COLUMNS],
        ),
    )
    .returning(payment_attempts.c.id)
)
_SAVE_WITH_ATTEMPT = (
    update(payment_attempts)
    .where(
        payment_attempts.c.id == bindparam("guard_attempt_id"),
        payment_attempts.c.order_id == _ORDER_SAVED.c.id,
    )
    .values(_set_from(payment_attempts, "a_", _ATTEMPT_CHANGES))
    .returning(payment_attempts.c.id)
)
_NEW_OUTBOX = insert(outbox)
_PAGE_CONFIG = select(page_configs).where(page_configs.c.page_id == bindparam("page_id"))


def _order_owner(user_owned: bool) -> ColumnElement[bool]:
    """The order's owner, given as bound parameters (``user_id``, ``session_id``)."""
    if user_owned:
        return orders.c.user_id == bindparam("user_id")
    return and_(orders.c.user_id.is_(None), orders.c.session_id == bindparam("session_id"))


@functools.cache
def _new_order_statement(dialect: str, keyed: bool, user_owned: bool) -> Any:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(orders)
    if keyed:
        # A concurrent submission with the same key wins; this one then inserts nothing.
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["user_id" if user_owned else "session_id", "idempotency_key"],
            index_where=_KEYED_USER if user_owned else _KEYED_SESSION,
        )
    return stmt.returning(*orders.c)


_ITEM_COLUMNS = ("product_id", "title", "quantity", "unit_price", "line_total", "cart_item_id")
#: What the announcement's row takes from its parameters; the rest is the order's.
_ANNOUNCED = ("id", "kind", "type", "object_type", "payload", "published", "status", "attempts")


@functools.cache
def _order_made_statement(
    keyed: bool, user_owned: bool, announced: bool, columns: tuple[str, ...]
) -> Any:
    """``create`` as one PostgreSQL statement: the order's INSERT in a CTE, its items (as
    arrays, one per column, so one statement serves any number of lines) and its outbox
    record taking the new id from it. A key already used makes the INSERT write nothing,
    and so the others. Parameters: ``o_<column>`` for the order, ``i_<column>`` for the
    items, ``x_<column>`` for the announcement."""
    made = _new_order_statement("postgresql", keyed, user_owned).values(
        _set_from(orders, "o_", columns)
    )
    order = made.cte("made")
    lines = (
        func.unnest(
            *[
                bindparam(f"i_{n}", type_=postgresql.ARRAY(order_items.c[n].type))
                for n in _ITEM_COLUMNS
            ]
        )
        .table_valued(*_ITEM_COLUMNS)
        .render_derived()
    )
    stored_items = (
        insert(order_items)
        .from_select(
            ["order_id", *_ITEM_COLUMNS],
            # One order, each of its lines: a product of the two, said as such.
            select(order.c.id, *[lines.c[n] for n in _ITEM_COLUMNS]).select_from(
                order.join(lines, true())
            ),
        )
        .cte("stored_items")
    )
    stmt = select(order).add_cte(stored_items)
    if announced:
        record = insert(outbox).from_select(
            [*_ANNOUNCED, "order_id", "object_id", "next_attempt_at"],
            select(
                *[bindparam(f"x_{n}", type_=outbox.c[n].type) for n in _ANNOUNCED],
                order.c.id,
                func.cast(order.c.id, String),
                bindparam("x_published", type_=outbox.c.published.type),
            ),
        )
        stmt = stmt.add_cte(record.cte("announced"))
    return stmt


@functools.cache
def _order_by_key_statement(user_owned: bool) -> Any:
    return select(orders.c.id).where(
        _order_owner(user_owned), orders.c.idempotency_key == bindparam("key")
    )


@functools.cache
def _payable_by_fingerprint_statement(user_owned: bool) -> Any:
    return (
        select(orders.c.id)
        .where(
            _order_owner(user_owned),
            orders.c.cart_fingerprint == bindparam("fingerprint"),
            # Written into the SQL: the statement can then run on the driver itself.
            orders.c.status.in_([literal_column(f"'{s}'") for s in _WATCHED_STATUSES]),
        )
        .order_by(orders.c.id.desc())
        .limit(1)
    )


class SqlOrderRepository:
    def __init__(self, conn: Statements) -> None:
        self.conn = conn

    async def create(
        self,
        *,
        identity: CartIdentity,
        page_id: int | None,
        page_slug: str | None,
        page_title: str | None,
        currency: str,
        total: Decimal,
        items: Sequence[NewOrderItem],
        webhook_token: str,
        idempotency_key: str | None,
        cart_fingerprint: str | None,
        now: datetime,
        announce: bool = False,
    ) -> Order | None:
        owner = identity.owner()
        keyed, user_owned = idempotency_key is not None, owner.user_id is not None
        values: dict[str, Any] = {
            "status": OrderStatus.CLAIMING.value,
            "user_id": owner.user_id,
            "session_id": owner.session_id,
            "page_id": page_id,
            "page_slug": page_slug,
            "page_title": page_title,
            "currency": currency,
            "total": total,
            "webhook_token": webhook_token,
            "idempotency_key": idempotency_key,
            "cart_fingerprint": cart_fingerprint,
            "needs_refund": False,
            "refunded": Decimal(0),
            "version": 0,
            "check_failures": 0,
            "created_at": now,
            "updated_at": now,
        }
        lines = [
            {
                "product_id": item.product_id,
                "title": item.title,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
                "line_total": quantize(item.unit_price * item.quantity, currency),
                "cart_item_id": item.cart_item_id,
            }
            for item in items
        ]
        announced = None
        if announce:
            # Its object is the order, whose id the database gives: 0 stands in for it here.
            made = order_created(0, Money(total, currency).as_str(), currency, now)
            announced = _activity_values(made)
        if self.conn.dialect.name == "postgresql":
            return await self._create_in_one(values, lines, announced, keyed, user_owned)
        # None when a concurrent submission with the same key made the order first.
        row = (
            await self.conn.execute(
                _new_order_statement(self.conn.dialect.name, keyed, user_owned), values
            )
        ).first()
        if row is None:
            return None
        if lines:
            await self.conn.execute(
                insert(order_items), [{"order_id": row.id, **line} for line in lines]
            )
        if announced is not None:
            await self.conn.execute(
                _NEW_OUTBOX,
                {**announced, "order_id": row.id, "object_id": str(row.id)},
            )
        return _order(row._mapping)

    async def _create_in_one(
        self,
        values: dict[str, Any],
        lines: list[dict[str, Any]],
        announced: dict[str, Any] | None,
        keyed: bool,
        user_owned: bool,
    ) -> Order | None:
        """The order, its items and its announcement as one statement (PostgreSQL)."""
        params = {f"o_{k}": v for k, v in values.items()}
        for name in _ITEM_COLUMNS:
            params[f"i_{name}"] = [line[name] for line in lines]
        # The order's columns are those ``create`` sets: the same every call, so cached.
        stmt = _order_made_statement(keyed, user_owned, announced is not None, tuple(values))
        if announced is not None:
            params.update({f"x_{k}": v for k, v in announced.items() if k in _ANNOUNCED})
        made = await rows_by_name(self.conn, stmt, params)
        return _order(made[0]) if made else None

    async def get(self, order_id: int, *, for_update: bool = False) -> Order | None:
        key = {"order_id": order_id}
        stmt = _ORDER_BY_ID_LOCKED if for_update else _ORDER_BY_ID
        row = (await self.conn.execute(stmt, key)).first()
        if row is None:
            return None
        attempt_rows = await self.conn.execute(_ATTEMPTS_OF_ORDER, key)
        return _order(row._mapping, [_attempt(r._mapping) for r in attempt_rows])

    async def save(self, order: Order) -> None:
        result = await self.conn.execute(
            _SAVE_ORDER,
            {"guard_id": order.id, "guard_version": order.version, **_order_values(order)},
        )
        if not result.rowcount:
            raise ConcurrentChange(order.id)
        order.version += 1
        for attempt in order.attempts:
            if attempt.id == 0:
                row = (
                    await self.conn.execute(
                        _NEW_ATTEMPT, {"order_id": order.id, **_new_attempt_values(attempt)}
                    )
                ).one()
                attempt.id = int(row.id)
            else:
                await self.conn.execute(
                    _SAVE_ATTEMPT,
                    {
                        "guard_id": attempt.id,
                        "guard_order_id": order.id,
                        **_attempt_values(attempt),
                    },
                )

    async def save_alone(self, order: Order) -> bool:
        """``save`` as one statement, which needs no transaction: on PostgreSQL, for an order
        with one attempt. False (nothing written) where it cannot be; ``ConcurrentChange``
        when the order's version has moved (nothing written either)."""
        if self.conn.dialect.name != "postgresql" or len(order.attempts) != 1:
            return False
        [attempt] = order.attempts
        params: dict[str, Any] = {"guard_id": order.id, "guard_version": order.version}
        params.update({f"o_{k}": v for k, v in _order_values(order).items()})
        stmt: Any
        if attempt.id == 0:
            values = _new_attempt_values(attempt)
            stmt = _SAVE_WITH_NEW_ATTEMPT
        else:
            values = _attempt_values(attempt)
            params["guard_attempt_id"] = attempt.id
            stmt = _SAVE_WITH_ATTEMPT
        params.update({f"a_{k}": v for k, v in values.items()})
        saved = await rows_by_name(self.conn, stmt, params)
        if not saved:
            raise ConcurrentChange(order.id)
        order.version += 1
        attempt.id = int(saved[0]["id"])
        return True

    async def id_by_idempotency_key(self, identity: CartIdentity, key: str) -> int | None:
        owner = identity.owner()
        found = await rows_by_name(
            self.conn,
            _order_by_key_statement(owner.user_id is not None),
            {**_owner_params(owner), "key": key},
        )
        return int(found[0]["id"]) if found else None

    async def payable_id_by_fingerprint(
        self, identity: CartIdentity, fingerprint: str
    ) -> int | None:
        owner = identity.owner()
        found = await rows_by_name(
            self.conn,
            _payable_by_fingerprint_statement(owner.user_id is not None),
            {**_owner_params(owner), "fingerprint": fingerprint},
        )
        return int(found[0]["id"]) if found else None

    async def list_for(self, identity: CartIdentity, limit: int = 100) -> list[Order]:
        rows = await self.conn.execute(
            select(orders)
            .where(_owned_by(orders, identity.owner()))
            .order_by(orders.c.id.desc())
            .limit(limit)
        )
        return [_order(r._mapping) for r in rows]

    async def items(self, order_id: int) -> list[StoredOrderItem]:
        rows = await self.conn.execute(_ITEMS_OF_ORDER, {"order_id": order_id})
        return [
            StoredOrderItem(
                r.product_id, r.title, r.quantity, r.unit_price, r.line_total, r.cart_item_id
            )
            for r in rows
        ]

    async def claim_due_for_check(self, now: datetime, lease: timedelta, limit: int) -> list[int]:
        open_attempt = (
            select(payment_attempts.c.id)
            .where(
                payment_attempts.c.order_id == orders.c.id,
                payment_attempts.c.status.in_(_OPEN_ATTEMPTS),
                payment_attempts.c.provider_checkout_id.is_not(None),
            )
            .exists()
        )
        due = orders.c.next_check_at.is_(None) | (orders.c.next_check_at <= now)
        stmt = (
            select(orders.c.id)
            .where(due, orders.c.status.in_(_WATCHED_STATUSES) | open_attempt)
            .order_by(orders.c.next_check_at.nulls_first(), orders.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=orders)
        )
        ids = [int(r.id) for r in await self.conn.execute(stmt)]
        if ids:
            await self.conn.execute(
                update(orders).where(orders.c.id.in_(ids)).values(next_check_at=now + lease)
            )
        return ids

    async def schedule_check(self, order_id: int, at: datetime, failures: int) -> None:
        await self.conn.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(next_check_at=at, check_failures=failures)
        )

    async def check_failures(self, order_id: int) -> int:
        row = (
            await self.conn.execute(select(orders.c.check_failures).where(orders.c.id == order_id))
        ).first()
        return int(row.check_failures) if row else 0

    async def admin_list(self, query: AdminOrderFilter) -> list[Order]:
        stmt = select(orders).order_by(orders.c.id.desc()).limit(query.limit)
        if query.status is not None:
            stmt = stmt.where(orders.c.status == query.status.value)
        if query.page_slug is not None:
            if query.page_slug == "":
                stmt = stmt.where(orders.c.page_slug.is_(None))
            else:
                stmt = stmt.where(orders.c.page_slug == query.page_slug)
        if query.needs_attention:
            parked = (
                select(outbox.c.id)
                .where(outbox.c.order_id == orders.c.id, outbox.c.status == "parked")
                .exists()
            )
            stmt = stmt.where(
                orders.c.needs_refund.is_(True) | orders.c.attention.is_not(None) | parked
            )
        return [_order(r._mapping) for r in await self.conn.execute(stmt)]

    async def attempt_keys_after(self, attempt_id: int, limit: int) -> list[tuple[int, str]]:
        rows = await self.conn.execute(
            select(payment_attempts.c.id, payment_attempts.c.api_key_encrypted)
            .where(
                payment_attempts.c.api_key_encrypted.is_not(None),
                payment_attempts.c.id > attempt_id,
            )
            .order_by(payment_attempts.c.id)
            .limit(limit)
        )
        return [(int(r.id), str(r.api_key_encrypted)) for r in rows]

    async def replace_attempt_key(self, attempt_id: int, old: str, new: str) -> bool:
        result = await self.conn.execute(
            update(payment_attempts)
            .where(
                payment_attempts.c.id == attempt_id,
                payment_attempts.c.api_key_encrypted == old,
            )
            .values(api_key_encrypted=new)
        )
        return bool(result.rowcount)

    async def add_refund(
        self,
        order_id: int,
        attempt_id: int,
        amount: Decimal,
        currency: str,
        requested_by: str | None,
        now: datetime,
    ) -> int:
        row = (
            await self.conn.execute(
                insert(refunds)
                .values(
                    order_id=order_id,
                    attempt_id=attempt_id,
                    amount=amount,
                    currency=currency,
                    status="requested",
                    requested_by=requested_by,
                    created_at=now,
                    updated_at=now,
                )
                .returning(refunds.c.id)
            )
        ).one()
        return int(row.id)

    async def finish_refund(
        self, refund_id: int, status: str, now: datetime, error: str | None = None
    ) -> None:
        await self.conn.execute(
            update(refunds)
            .where(refunds.c.id == refund_id)
            .values(status=status, error=error, updated_at=now)
        )

    async def refunds(self, order_id: int) -> list[StoredRefund]:
        rows = await self.conn.execute(
            select(refunds).where(refunds.c.order_id == order_id).order_by(refunds.c.id)
        )
        return [_refund(r) for r in rows]

    async def adopt(self, session_id: str, user_id: int, now: datetime) -> int:
        mine = orders.alias("mine")
        key_taken = (
            select(mine.c.id)
            .where(mine.c.user_id == user_id, mine.c.idempotency_key == orders.c.idempotency_key)
            .exists()
        )
        result = await self.conn.execute(
            update(orders)
            .where(orders.c.user_id.is_(None), orders.c.session_id == session_id)
            .values(
                user_id=user_id,
                # A key the user already used stays with the user's own order: a retry of that
                # request must keep finding it. The adopted order gives the key up.
                idempotency_key=case((key_taken, None), else_=orders.c.idempotency_key),
                updated_at=now,
            )
        )
        return int(result.rowcount)


class SqlPageConfigRepository:
    def __init__(self, conn: Statements) -> None:
        self.conn = conn

    async def get(self, page_id: int) -> StoredPageConfig | None:
        found = await rows_by_name(self.conn, _PAGE_CONFIG, {"page_id": page_id})
        return self._stored(found[0]) if found else None

    async def with_api_key_after(self, page_id: int, limit: int) -> list[StoredPageConfig]:
        result = await self.conn.execute(
            select(page_configs)
            .where(
                page_configs.c.api_key_encrypted.is_not(None),
                page_configs.c.api_key_encrypted != "",
                page_configs.c.page_id > page_id,
            )
            .order_by(page_configs.c.page_id)
            .limit(limit)
        )
        return [self._stored(row._mapping) for row in result]

    async def replace_api_key(self, page_id: int, old: str, new: str) -> bool:
        # Guarded by the old value: a key a seller set meanwhile is never overwritten. The
        # config itself did not change, so updated_at stays.
        result = await self.conn.execute(
            update(page_configs)
            .where(page_configs.c.page_id == page_id, page_configs.c.api_key_encrypted == old)
            .values(api_key_encrypted=new)
        )
        return bool(result.rowcount)

    @staticmethod
    def _stored(row: Mapping[str, Any]) -> StoredPageConfig:
        return StoredPageConfig(
            row["page_id"],
            row["merchant_code"],
            row["api_key_encrypted"],
            row["checkout_prefix"],
            row["updated_at"],
        )

    async def upsert(
        self,
        page_id: int,
        *,
        merchant_code: str | None,
        api_key_encrypted: str | None,
        checkout_prefix: str | None,
        now: datetime,
        only_if_missing: bool = False,
    ) -> StoredPageConfig:
        stmt = _insert_for(self.conn, page_configs).values(
            page_id=page_id,
            merchant_code=merchant_code,
            api_key_encrypted=api_key_encrypted,
            checkout_prefix=checkout_prefix,
            created_at=now,
            updated_at=now,
        )
        if only_if_missing:
            stmt = stmt.on_conflict_do_nothing(index_elements=["page_id"])
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=["page_id"],
                set_={
                    "merchant_code": merchant_code,
                    "api_key_encrypted": api_key_encrypted,
                    "checkout_prefix": checkout_prefix,
                    "updated_at": now,
                },
            )
        await self.conn.execute(stmt)
        stored = await self.get(page_id)
        assert stored is not None
        return stored


def _record(row: Row[Any]) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        kind=row.kind,
        type=row.type,
        object_type=row.object_type,
        object_id=row.object_id,
        order_id=row.order_id,
        payload=json.loads(row.payload),
        published=row.published,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        done_at=row.delivered_at,
    )


def _activity_values(activity: Activity, order_id: int | None = None) -> dict[str, Any]:
    """A new outbox row recording ``activity``: pending, due at once, with a fresh id."""
    return {
        "id": str(uuid.uuid4()),
        "kind": "activity",
        "order_id": order_id,
        "type": activity.type,
        "object_type": activity.object_type,
        "object_id": activity.object_id,
        "payload": json.dumps(activity.payload, sort_keys=True),
        "published": activity.published,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": activity.published,
    }


class SqlOutboxRepository:
    def __init__(self, conn: Statements) -> None:
        self.conn = conn

    async def _insert(self, **values: Any) -> str:
        record_id = str(uuid.uuid4())
        await self.conn.execute(
            _NEW_OUTBOX, {"id": record_id, "status": "pending", "attempts": 0, **values}
        )
        return record_id

    async def add(self, activity: Activity, order_id: int | None = None) -> str:
        values = _activity_values(activity, order_id)
        await self.conn.execute(_NEW_OUTBOX, values)
        return str(values["id"])

    async def add_command(self, command: Command, now: datetime) -> str:
        return await self._insert(
            kind="command",
            order_id=command.order_id,
            type=command.type.value,
            object_type="rose:Order",
            object_id=str(command.order_id),
            payload=json.dumps(command.payload, sort_keys=True),
            published=now,
            next_attempt_at=now,
        )

    async def count(self, type_: str, object_id: str) -> int:
        result = await self.conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.type == type_, outbox.c.object_id == object_id)
        )
        return int(result.scalar_one())

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[OutboxRecord]:
        stmt = (
            select(outbox.c.id)
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.next_attempt_at, outbox.c.published)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = [r.id for r in await self.conn.execute(stmt)]
        if not ids:
            return []
        rows = await self.conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(next_attempt_at=now + lease, attempts=outbox.c.attempts + 1)
            .returning(*outbox.c)
        )
        return sorted((_record(r) for r in rows), key=lambda r: (r.published, r.id))

    async def finish(self, record_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(outbox)
            .where(outbox.c.id == record_id, outbox.c.status == "pending")
            .values(status="done", delivered_at=now, last_error=None)
        )

    async def retry_later(self, record_id: str, error: str, at: datetime) -> None:
        await self.conn.execute(
            update(outbox)
            .where(outbox.c.id == record_id, outbox.c.status == "pending")
            .values(next_attempt_at=at, last_error=error[:2000])
        )

    async def park(self, record_id: str, error: str, now: datetime) -> None:
        await self.conn.execute(
            update(outbox)
            .where(outbox.c.id == record_id, outbox.c.status == "pending")
            .values(status="parked", last_error=error[:2000], next_attempt_at=None)
        )

    async def unpark(self, record_id: str, now: datetime) -> bool:
        result = await self.conn.execute(
            update(outbox)
            .where(outbox.c.id == record_id, outbox.c.status == "parked")
            .values(status="pending", attempts=0, next_attempt_at=now)
        )
        return bool(result.rowcount)

    async def for_order(self, order_id: int) -> list[OutboxRecord]:
        rows = await self.conn.execute(
            select(outbox)
            .where(outbox.c.order_id == order_id)
            .order_by(outbox.c.published, outbox.c.id)
        )
        return [_record(r) for r in rows]
