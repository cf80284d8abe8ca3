"""The cart's own tables. Alembic migrations create them; this module only describes them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from rose_cart.adapters.db.types import MoneyType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Money columns hold up to three decimals (for currencies such as KWD); values are
# quantized to the currency's minor unit before they are written.
MONEY = MoneyType()

cart_items = Table(
    "cart_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=True),
    Column("session_id", String(64), nullable=True),
    Column("product_id", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=True),
    Column("order_id", Integer, nullable=True),
    # One live line per product per owner: concurrent adds meet in this index and merge.
    Index(
        "uq_cart_items_user_product_live",
        "user_id",
        "product_id",
        unique=True,
        sqlite_where=text("deleted_at IS NULL AND user_id IS NOT NULL"),
        postgresql_where=text("deleted_at IS NULL AND user_id IS NOT NULL"),
    ),
    Index(
        "uq_cart_items_session_product_live",
        "session_id",
        "product_id",
        unique=True,
        sqlite_where=text("deleted_at IS NULL AND user_id IS NULL"),
        postgresql_where=text("deleted_at IS NULL AND user_id IS NULL"),
    ),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("status", String(32), nullable=False, index=True),
    Column("user_id", Integer, nullable=True, index=True),
    Column("session_id", String(64), nullable=True, index=True),
    Column("page_id", Integer, nullable=True),
    Column("page_slug", String(200), nullable=True),
    Column("page_title", String(300), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("total", MONEY, nullable=False),
    Column("webhook_token", String(64), nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("cart_fingerprint", String(64), nullable=True),
    Column("needs_refund", Boolean, nullable=False, server_default=text("false")),
    # Why a person must look at the order (see domain.order.Attention), or NULL.
    Column("attention", String(64), nullable=True),
    Column("refunded", MONEY, nullable=False, server_default=text("0")),
    # The aggregate's version: every save is ``UPDATE … WHERE version = :v``.
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("paid_at", UTCDateTime(), nullable=True),
    # When the reconciler should next ask the provider about this order, and how many
    # answers in a row were unreadable (its backoff).
    Column("next_check_at", UTCDateTime(), nullable=True),
    Column("check_failures", Integer, nullable=False, server_default=text("0")),
    # A double click (same key, same owner) meets here and becomes one order.
    Index(
        "uq_orders_user_idempotency",
        "user_id",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL AND user_id IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL AND user_id IS NOT NULL"),
    ),
    Index(
        "uq_orders_session_idempotency",
        "session_id",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL AND user_id IS NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL AND user_id IS NULL"),
    ),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("product_id", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", MONEY, nullable=False),
    Column("line_total", MONEY, nullable=False),
    Column("cart_item_id", Integer, nullable=True),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("number", Integer, nullable=False, server_default=text("1")),
    Column("status", String(32), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(64), nullable=True, unique=True),
    Column("provider_checkout_id", String(100), nullable=True, index=True),
    Column("hosted_url", Text, nullable=True),
    Column("transaction_id", String(100), nullable=True),
    # The SumUp account the checkout was made with ("site" or "page:<id>"), its merchant
    # code and its API key (encrypted): checks, closing and refunds use these, whatever
    # the page's settings say later.
    Column("account", String(32), nullable=False, server_default=text("'site'")),
    Column("merchant_code", String(64), nullable=False, server_default=text("''")),
    Column("api_key_encrypted", Text, nullable=True),
    Column("valid_until", UTCDateTime(), nullable=True),
    Column("unreadable_since", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("order_id", "number", name="uq_payment_attempts_order_number"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("attempt_id", Integer, ForeignKey("payment_attempts.id"), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    # requested (SumUp being asked) | done | failed (SumUp said no) | unconfirmed
    Column("status", String(16), nullable=False),
    Column("requested_by", String(100), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

page_configs = Table(
    "page_configs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("page_id", Integer, nullable=False, unique=True),
    Column("merchant_code", String(64), nullable=True),
    Column("api_key_encrypted", Text, nullable=True),
    Column("checkout_prefix", String(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False, server_default=text("'activity'")),
    Column("order_id", Integer, nullable=True, index=True),
    Column("type", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("published", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    # pending | done | parked (kept failing: an admin looks)
    Column("status", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_object", "type", "object_id"),
)
