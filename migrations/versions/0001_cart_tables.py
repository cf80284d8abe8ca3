"""The cart's own tables: cart items, orders, order items, payment attempts, page configs,
outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 3)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cart_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("product_id", sa.Integer, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.Column("order_id", sa.Integer, nullable=True),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    )
    live_user = sa.text("deleted_at IS NULL AND user_id IS NOT NULL")
    live_session = sa.text("deleted_at IS NULL AND user_id IS NULL")
    op.create_index(
        "uq_cart_items_user_product_live",
        "cart_items",
        ["user_id", "product_id"],
        unique=True,
        sqlite_where=live_user,
        postgresql_where=live_user,
    )
    op.create_index(
        "uq_cart_items_session_product_live",
        "cart_items",
        ["session_id", "product_id"],
        unique=True,
        sqlite_where=live_session,
        postgresql_where=live_session,
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("page_id", sa.Integer, nullable=True),
        sa.Column("page_slug", sa.String(200), nullable=True),
        sa.Column("page_title", sa.String(300), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("webhook_token", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("cart_fingerprint", sa.String(64), nullable=True),
        sa.Column("needs_refund", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("paid_at", TS, nullable=True),
        sa.Column("checked_at", TS, nullable=True),
    )
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_user_id", "orders", ["user_id"])
    op.create_index("ix_orders_session_id", "orders", ["session_id"])
    with_key_user = sa.text("idempotency_key IS NOT NULL AND user_id IS NOT NULL")
    with_key_session = sa.text("idempotency_key IS NOT NULL AND user_id IS NULL")
    op.create_index(
        "uq_orders_user_idempotency",
        "orders",
        ["user_id", "idempotency_key"],
        unique=True,
        sqlite_where=with_key_user,
        postgresql_where=with_key_user,
    )
    op.create_index(
        "uq_orders_session_idempotency",
        "orders",
        ["session_id", "idempotency_key"],
        unique=True,
        sqlite_where=with_key_session,
        postgresql_where=with_key_session,
    )

    op.create_table(
        "order_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "order_id",
            sa.Integer,
            sa.ForeignKey("orders.id", ondelete="CASCADE", name="fk_order_items_order_id_orders"),
            nullable=False,
        ),
        sa.Column("product_id", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", MONEY, nullable=False),
        sa.Column("line_total", MONEY, nullable=False),
        sa.Column("cart_item_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_order_items_order_id", "order_items", ["order_id"])

    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "order_id",
            sa.Integer,
            sa.ForeignKey(
                "orders.id", ondelete="CASCADE", name="fk_payment_attempts_order_id_orders"
            ),
            nullable=False,
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("provider_checkout_id", sa.String(100), nullable=True),
        sa.Column("hosted_url", sa.Text, nullable=True),
        sa.Column("transaction_id", sa.String(100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("reference", name="uq_payment_attempts_reference"),
    )
    op.create_index("ix_payment_attempts_order_id", "payment_attempts", ["order_id"])
    op.create_index(
        "ix_payment_attempts_provider_checkout_id", "payment_attempts", ["provider_checkout_id"]
    )

    op.create_table(
        "page_configs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("page_id", sa.Integer, nullable=False),
        sa.Column("merchant_code", sa.String(64), nullable=True),
        sa.Column("api_key_encrypted", sa.Text, nullable=True),
        sa.Column("checkout_prefix", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("page_id", name="uq_page_configs_page_id"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("published", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_outbox_undelivered", "outbox", ["delivered_at", "next_attempt_at"])
    op.create_index("ix_outbox_object", "outbox", ["type", "object_id"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("page_configs")
    op.drop_table("payment_attempts")
    op.drop_table("order_items")
    op.drop_table("orders")
    op.drop_table("cart_items")
