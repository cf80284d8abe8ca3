"""Repositories over one open connection. They never commit: the unit of work does."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, case, func, insert, literal, select, text, update
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
)
from rose_cart.domain.cart import HARD_MAX_PER_LINE
from rose_cart.domain.events import Activity
from rose_cart.domain.identity import CartIdentity
from rose_cart.domain.money import quantize
from rose_cart.domain.order import (
    PAYABLE,
    AttemptStatus,
    OrderStatus,
    attempt_sources,
    order_sources,
)
from rose_cart.ports import (
    NewOrderItem,
    StoredAttempt,
    StoredCartItem,
    StoredOrder,
    StoredOrderItem,
    StoredPageConfig,
)

if TYPE_CHECKING:
    from rose_cart.adapters.db.uow import SqlConnection

_LIVE_USER = text("deleted_at IS NULL AND user_id IS NOT NULL")
_LIVE_SESSION = text("deleted_at IS NULL AND user_id IS NULL")
_KEYED_USER = text("idempotency_key IS NOT NULL AND user_id IS NOT NULL")
_KEYED_SESSION = text("idempotency_key IS NOT NULL AND user_id IS NULL")


def _insert_for(conn: SqlConnection, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both SQLite and PostgreSQL do)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _owned_by(table: Any, identity: CartIdentity) -> ColumnElement[bool]:
    if identity.user_id is not None:
        return table.c.user_id == identity.user_id
    return and_(table.c.user_id.is_(None), table.c.session_id == identity.session_id)


@functools.cache
def _add_statement(dialect: str, user_owned: bool) -> Any:
    """The add-to-cart upsert, built once: add is the hottest write, and building this
    statement (its ``excluded`` columns above all) cost more than running it."""
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(cart_items).values(
        user_id=bindparam("user_id"),
        session_id=bindparam("session_id"),
        product_id=bindparam("product_id"),
        quantity=bindparam("quantity"),
        created_at=bindparam("now", type_=cart_items.c.created_at.type),
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
    ).returning(cart_items.c.quantity)


class SqlCartRepository:
    def __init__(self, conn: SqlConnection) -> None:
        self.conn = conn

    async def live_items(self, identity: CartIdentity) -> list[StoredCartItem]:
        rows = await self.conn.execute(
            select(
                cart_items.c.id,
                cart_items.c.product_id,
                cart_items.c.quantity,
                cart_items.c.created_at,
            )
            .where(_owned_by(cart_items, identity), cart_items.c.deleted_at.is_(None))
            .order_by(cart_items.c.created_at, cart_items.c.id)
        )
        return [StoredCartItem(r.id, r.product_id, r.quantity, r.created_at) for r in rows]

    async def add_quantity(
        self, identity: CartIdentity, product_id: int, quantity: int, maximum: int, now: datetime
    ) -> int | None:
        user_owned = identity.user_id is not None
        stmt = _add_statement(self.conn.dialect.name, user_owned)
        row = (
            await self.conn.execute(
                stmt,
                {
                    "user_id": identity.user_id,
                    "session_id": None if user_owned else identity.session_id,
                    "product_id": product_id,
                    "quantity": quantity,
                    "now": now,
                    "maximum": maximum,
                },
            )
        ).first()
        return None if row is None else int(row.quantity)

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


def _order(row: Row[Any]) -> StoredOrder:
    return StoredOrder(
        id=row.id,
        status=OrderStatus(row.status),
        user_id=row.user_id,
        session_id=row.session_id,
        page_id=row.page_id,
        page_slug=row.page_slug,
        page_title=row.page_title,
        currency=row.currency,
        total=quantize(row.total, row.currency),
        webhook_token=row.webhook_token,
        idempotency_key=row.idempotency_key,
        cart_fingerprint=row.cart_fingerprint,
        created_at=row.created_at,
        updated_at=row.updated_at,
        paid_at=row.paid_at,
        needs_refund=bool(row.needs_refund),
    )


def _attempt(row: Row[Any]) -> StoredAttempt:
    return StoredAttempt(
        id=row.id,
        order_id=row.order_id,
        status=AttemptStatus(row.status),
        amount=quantize(row.amount, row.currency),
        currency=row.currency,
        reference=row.reference,
        provider_checkout_id=row.provider_checkout_id,
        hosted_url=row.hosted_url,
        transaction_id=row.transaction_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlOrderRepository:
    def __init__(self, conn: SqlConnection) -> None:
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
    ) -> StoredOrder | None:
        owner = identity.owner()
        stmt = _insert_for(self.conn, orders).values(
            status=OrderStatus.PENDING.value,
            user_id=owner.user_id,
            session_id=owner.session_id,
            page_id=page_id,
            page_slug=page_slug,
            page_title=page_title,
            currency=currency,
            total=total,
            webhook_token=webhook_token,
            idempotency_key=idempotency_key,
            cart_fingerprint=cart_fingerprint,
            needs_refund=False,
            created_at=now,
            updated_at=now,
        )
        if idempotency_key is not None:
            # A concurrent submission with the same key wins; this one then returns None.
            user_owned = owner.user_id is not None
            stmt = stmt.on_conflict_do_nothing(
                index_elements=["user_id" if user_owned else "session_id", "idempotency_key"],
                index_where=_KEYED_USER if user_owned else _KEYED_SESSION,
            )
        row = (await self.conn.execute(stmt.returning(*orders.c))).first()
        if row is None:
            return None
        if items:
            await self.conn.execute(
                insert(order_items),
                [
                    {
                        "order_id": row.id,
                        "product_id": item.product_id,
                        "title": item.title,
                        "quantity": item.quantity,
                        "unit_price": item.unit_price,
                        "line_total": quantize(item.unit_price * item.quantity, currency),
                        "cart_item_id": item.cart_item_id,
                    }
                    for item in items
                ],
            )
        return _order(row)

    async def get(self, order_id: int, *, for_update: bool = False) -> StoredOrder | None:
        stmt = select(orders).where(orders.c.id == order_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).first()
        return None if row is None else _order(row)

    async def find_by_idempotency_key(self, identity: CartIdentity, key: str) -> StoredOrder | None:
        row = (
            await self.conn.execute(
                select(orders).where(
                    _owned_by(orders, identity.owner()), orders.c.idempotency_key == key
                )
            )
        ).first()
        return None if row is None else _order(row)

    async def find_payable_by_fingerprint(
        self, identity: CartIdentity, fingerprint: str
    ) -> StoredOrder | None:
        row = (
            await self.conn.execute(
                select(orders)
                .where(
                    _owned_by(orders, identity.owner()),
                    orders.c.cart_fingerprint == fingerprint,
                    orders.c.status.in_([s.value for s in PAYABLE]),
                )
                .order_by(orders.c.id.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _order(row)

    async def list_for(self, identity: CartIdentity, limit: int = 100) -> list[StoredOrder]:
        rows = await self.conn.execute(
            select(orders)
            .where(_owned_by(orders, identity.owner()))
            .order_by(orders.c.id.desc())
            .limit(limit)
        )
        return [_order(r) for r in rows]

    async def items(self, order_id: int) -> list[StoredOrderItem]:
        rows = await self.conn.execute(
            select(order_items).where(order_items.c.order_id == order_id).order_by(order_items.c.id)
        )
        return [
            StoredOrderItem(
                r.product_id, r.title, r.quantity, r.unit_price, r.line_total, r.cart_item_id
            )
            for r in rows
        ]

    async def transition(
        self, order_id: int, target: OrderStatus, now: datetime, *, paid: bool = False
    ) -> bool:
        values: dict[str, Any] = {"status": target.value, "updated_at": now}
        if paid:
            values["paid_at"] = now
        return await self._guarded(orders, order_id, order_sources(target), values)

    async def create_attempt(
        self, order_id: int, amount: Decimal, currency: str, now: datetime
    ) -> StoredAttempt:
        row = (
            await self.conn.execute(
                insert(payment_attempts)
                .values(
                    order_id=order_id,
                    status=AttemptStatus.CREATED.value,
                    amount=amount,
                    currency=currency,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*payment_attempts.c)
            )
        ).one()
        return _attempt(row)

    async def set_attempt_checkout(
        self,
        attempt_id: int,
        reference: str,
        provider_checkout_id: str,
        hosted_url: str,
        now: datetime,
    ) -> None:
        await self.conn.execute(
            update(payment_attempts)
            .where(
                payment_attempts.c.id == attempt_id,
                # Two workers resuming one attempt get the same checkout; keep the first.
                payment_attempts.c.provider_checkout_id.is_(None),
            )
            .values(
                reference=reference,
                provider_checkout_id=provider_checkout_id,
                hosted_url=hosted_url,
                updated_at=now,
            )
        )
        await self.transition_attempt(attempt_id, AttemptStatus.PENDING, now)

    async def transition_attempt(
        self,
        attempt_id: int,
        target: AttemptStatus,
        now: datetime,
        transaction_id: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": target.value, "updated_at": now}
        if transaction_id:
            values["transaction_id"] = transaction_id
        return await self._guarded(payment_attempts, attempt_id, attempt_sources(target), values)

    async def _guarded(
        self, table: Any, row_id: int, sources: frozenset[StrEnum], values: dict[str, Any]
    ) -> bool:
        """``UPDATE … WHERE id = :id AND status IN (legal sources)``: a repeated or racing
        transition changes nothing the second time."""
        result = await self.conn.execute(
            update(table)
            .where(table.c.id == row_id, table.c.status.in_([s.value for s in sources]))
            .values(**values)
        )
        return bool(result.rowcount)

    async def attempts(self, order_id: int) -> list[StoredAttempt]:
        rows = await self.conn.execute(
            select(payment_attempts)
            .where(payment_attempts.c.order_id == order_id)
            .order_by(payment_attempts.c.id)
        )
        return [_attempt(r) for r in rows]

    async def claim_payable_for_reconcile(
        self, older_than: datetime, limit: int
    ) -> list[StoredOrder]:
        due = (orders.c.checked_at.is_(None)) | (orders.c.checked_at < older_than)
        stmt = (
            select(orders)
            .where(orders.c.status.in_([s.value for s in PAYABLE]), due)
            .order_by(orders.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await self.conn.execute(stmt)).all()
        return [_order(r) for r in rows]

    async def flag_needs_refund(self, order_id: int, now: datetime) -> None:
        await self.conn.execute(
            update(orders).where(orders.c.id == order_id).values(needs_refund=True, updated_at=now)
        )

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

    async def touch(self, order_id: int, now: datetime) -> None:
        await self.conn.execute(
            update(orders).where(orders.c.id == order_id).values(checked_at=now)
        )


class SqlPageConfigRepository:
    def __init__(self, conn: SqlConnection) -> None:
        self.conn = conn

    async def get(self, page_id: int) -> StoredPageConfig | None:
        row = (
            await self.conn.execute(select(page_configs).where(page_configs.c.page_id == page_id))
        ).first()
        if row is None:
            return None
        return StoredPageConfig(
            row.page_id,
            row.merchant_code,
            row.api_key_encrypted,
            row.checkout_prefix,
            row.updated_at,
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


class SqlOutboxRepository:
    def __init__(self, conn: SqlConnection) -> None:
        self.conn = conn

    async def add(self, activity: Activity) -> str:
        activity_id = str(uuid.uuid4())
        await self.conn.execute(
            insert(outbox).values(
                id=activity_id,
                type=activity.type,
                object_type=activity.object_type,
                object_id=activity.object_id,
                payload=json.dumps(activity.payload, sort_keys=True),
                published=activity.published,
                attempts=0,
            )
        )
        return activity_id

    async def count(self, type_: str, object_id: str) -> int:
        result = await self.conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.type == type_, outbox.c.object_id == object_id)
        )
        return int(result.scalar_one())
