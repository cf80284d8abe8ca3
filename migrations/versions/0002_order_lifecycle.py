"""The Order aggregate's lifecycle: versions, attention flags, refunds, the account each
payment attempt was made with, and an outbox that holds commands for the relay.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 3)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("attention", sa.String(64), nullable=True))
        batch.add_column(sa.Column("refunded", MONEY, nullable=False, server_default=sa.text("0")))
        batch.add_column(
            sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("next_check_at", TS, nullable=True))
        batch.add_column(
            sa.Column("check_failures", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
        batch.drop_column("checked_at")

    with op.batch_alter_table("payment_attempts") as batch:
        batch.add_column(
            sa.Column("number", sa.Integer, nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(
            sa.Column("account", sa.String(32), nullable=False, server_default=sa.text("'site'"))
        )
        batch.add_column(
            sa.Column("merchant_code", sa.String(64), nullable=False, server_default=sa.text("''"))
        )
        batch.add_column(sa.Column("api_key_encrypted", sa.Text, nullable=True))
        batch.add_column(sa.Column("valid_until", TS, nullable=True))
        batch.add_column(sa.Column("unreadable_since", TS, nullable=True))
    # Number the attempts each order already has, oldest first.
    op.execute(
        "UPDATE payment_attempts SET number = (SELECT COUNT(*) FROM payment_attempts AS p2 "
        "WHERE p2.order_id = payment_attempts.order_id AND p2.id <= payment_attempts.id)"
    )
    with op.batch_alter_table("payment_attempts") as batch:
        batch.create_unique_constraint("uq_payment_attempts_order_number", ["order_id", "number"])

    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "order_id",
            sa.Integer,
            sa.ForeignKey("orders.id", ondelete="CASCADE", name="fk_refunds_order_id_orders"),
            nullable=False,
        ),
        sa.Column(
            "attempt_id",
            sa.Integer,
            sa.ForeignKey("payment_attempts.id", name="fk_refunds_attempt_id_payment_attempts"),
            nullable=False,
        ),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id"])

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default=sa.text("'activity'"))
        )
        batch.add_column(sa.Column("order_id", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'pending'"))
        )
        batch.drop_index("ix_outbox_undelivered")
        batch.create_index("ix_outbox_due", ["status", "next_attempt_at"])
        batch.create_index("ix_outbox_order_id", ["order_id"])
    # Activities written before the relay existed count as delivered.
    op.execute("UPDATE outbox SET status = 'done' WHERE delivered_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_order_id")
        batch.drop_index("ix_outbox_due")
        batch.create_index("ix_outbox_undelivered", ["delivered_at", "next_attempt_at"])
        batch.drop_column("status")
        batch.drop_column("order_id")
        batch.drop_column("kind")
    op.drop_index("ix_refunds_order_id", "refunds")
    op.drop_table("refunds")
    with op.batch_alter_table("payment_attempts") as batch:
        batch.drop_constraint("uq_payment_attempts_order_number", type_="unique")
        for column in (
            "unreadable_since",
            "valid_until",
            "api_key_encrypted",
            "merchant_code",
            "account",
            "number",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("checked_at", TS, nullable=True))
        for column in ("check_failures", "next_check_at", "version", "refunded", "attention"):
            batch.drop_column(column)
