"""The events sibling's tables: calendars, entries, ticket types, bookings, tickets, and
the claims orders have made.

Revision ID: e0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 3)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events_calendars",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("page_post_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events_calendars"),
        sa.UniqueConstraint("slug", name="uq_events_calendars_slug"),
    )
    op.create_table(
        "events_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("calendar_id", sa.Integer, nullable=False),
        sa.Column("slug", sa.String(120), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("start_at", TS, nullable=False),
        sa.Column("end_at", TS, nullable=True),
        sa.Column("cost", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("bookable", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events_entries"),
        sa.UniqueConstraint("slug", name="uq_events_entries_slug"),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["events_calendars.id"],
            name="fk_events_entries_calendar_id_events_calendars",
        ),
    )
    op.create_index("ix_events_entries_start_at", "events_entries", ["start_at"])
    op.create_table(
        "events_ticket_types",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("cost", MONEY, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_events_ticket_types"),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["events_entries.id"],
            name="fk_events_ticket_types_entry_id_events_entries",
        ),
        sa.CheckConstraint("capacity >= 0", name="ck_events_ticket_types_capacity_not_negative"),
    )
    op.create_index(
        "uq_events_ticket_types_entry_name",
        "events_ticket_types",
        ["entry_id", "name"],
        unique=True,
    )
    op.create_table(
        "events_bookings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("order_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events_bookings"),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["events_entries.id"],
            name="fk_events_bookings_entry_id_events_entries",
        ),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR session_id IS NOT NULL",
            name="ck_events_bookings_has_owner",
        ),
    )
    pending_user = sa.text("state = 'pending' AND user_id IS NOT NULL")
    pending_session = sa.text("state = 'pending' AND user_id IS NULL")
    op.create_index(
        "uq_events_bookings_user_entry_pending",
        "events_bookings",
        ["user_id", "entry_id"],
        unique=True,
        sqlite_where=pending_user,
        postgresql_where=pending_user,
    )
    op.create_index(
        "uq_events_bookings_session_entry_pending",
        "events_bookings",
        ["session_id", "entry_id"],
        unique=True,
        sqlite_where=pending_session,
        postgresql_where=pending_session,
    )
    op.create_index("ix_events_bookings_order_id", "events_bookings", ["order_id"])
    op.create_table(
        "events_tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_type_id", sa.Integer, nullable=False),
        sa.Column("entry_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("order_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events_tickets"),
        sa.ForeignKeyConstraint(
            ["ticket_type_id"],
            ["events_ticket_types.id"],
            name="fk_events_tickets_ticket_type_id_events_ticket_types",
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["events_entries.id"],
            name="fk_events_tickets_entry_id_events_entries",
        ),
    )
    op.create_index("ix_events_tickets_type_state", "events_tickets", ["ticket_type_id", "state"])
    op.create_index("ix_events_tickets_user_state", "events_tickets", ["user_id", "state"])
    op.create_index("ix_events_tickets_order_id", "events_tickets", ["order_id"])
    op.create_table(
        "events_claims",
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("page_post_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "kind", name="pk_events_claims"),
    )
    op.create_table(
        "events_claim_items",
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "kind", "item_id", name="pk_events_claim_items"),
    )


def downgrade() -> None:
    op.drop_table("events_claim_items")
    op.drop_table("events_claims")
    op.drop_index("ix_events_tickets_order_id", table_name="events_tickets")
    op.drop_index("ix_events_tickets_user_state", table_name="events_tickets")
    op.drop_index("ix_events_tickets_type_state", table_name="events_tickets")
    op.drop_table("events_tickets")
    op.drop_index("ix_events_bookings_order_id", table_name="events_bookings")
    op.drop_index("uq_events_bookings_session_entry_pending", table_name="events_bookings")
    op.drop_index("uq_events_bookings_user_entry_pending", table_name="events_bookings")
    op.drop_table("events_bookings")
    op.drop_index("uq_events_ticket_types_entry_name", table_name="events_ticket_types")
    op.drop_table("events_ticket_types")
    op.drop_index("ix_events_entries_start_at", table_name="events_entries")
    op.drop_table("events_entries")
    op.drop_table("events_calendars")
