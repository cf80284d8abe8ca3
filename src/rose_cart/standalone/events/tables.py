"""The events sibling's own tables (prefixed ``events_``), described for SQLAlchemy Core.

They stand for the events service's database: the cart never reads them. Migrations under
``migrations/`` next to this module create them, with their own version table.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
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

MONEY = MoneyType()

#: A calendar belongs to a page of the co-op (``page_post_id``), or to the site (None).
calendars = Table(
    "events_calendars",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(100), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("page_post_id", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

#: A dated slot on a calendar: bookable (a visitor books a place) and/or ticketed (it has
#: ticket types).
entries = Table(
    "events_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("calendar_id", Integer, ForeignKey("events_calendars.id"), nullable=False),
    Column("slug", String(120), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("start_at", UTCDateTime(), nullable=False),
    Column("end_at", UTCDateTime(), nullable=True),
    Column("cost", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("bookable", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_events_entries_start_at", "start_at"),
)

ticket_types = Table(
    "events_ticket_types",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", Integer, ForeignKey("events_entries.id"), nullable=False),
    Column("name", String(120), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("cost", MONEY, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("position", Integer, nullable=False, server_default="0"),
    CheckConstraint("capacity >= 0", name="capacity_not_negative"),
    Index("uq_events_ticket_types_entry_name", "entry_id", "name", unique=True),
)

#: Bookings: states pending (in the cart) -> ordered -> provisional (paid) -> confirmed |
#: declined; cancelled when taken out of the cart. ``order_id`` is the order that holds the
#: booking, or that it was released from. A visitor holds at most one pending booking of an
#: entry (they meet in the partial unique indexes).
bookings = Table(
    "events_bookings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", Integer, ForeignKey("events_entries.id"), nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("session_id", String(64), nullable=True),
    Column("state", String(16), nullable=False),
    Column("order_id", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("user_id IS NOT NULL OR session_id IS NOT NULL", name="has_owner"),
    Index(
        "uq_events_bookings_user_entry_pending",
        "user_id",
        "entry_id",
        unique=True,
        sqlite_where=text("state = 'pending' AND user_id IS NOT NULL"),
        postgresql_where=text("state = 'pending' AND user_id IS NOT NULL"),
    ),
    Index(
        "uq_events_bookings_session_entry_pending",
        "session_id",
        "entry_id",
        unique=True,
        sqlite_where=text("state = 'pending' AND user_id IS NULL"),
        postgresql_where=text("state = 'pending' AND user_id IS NULL"),
    ),
    Index("ix_events_bookings_order_id", "order_id"),
)

#: Tickets: pending (in the cart, not sold) -> reserved (claimed) -> confirmed (paid) ->
#: checked_in; cancelled when taken out of the cart. Sold = reserved + confirmed +
#: checked_in. ``order_id`` as for bookings.
tickets = Table(
    "events_tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_type_id", Integer, ForeignKey("events_ticket_types.id"), nullable=False),
    Column("entry_id", Integer, ForeignKey("events_entries.id"), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("order_id", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_events_tickets_type_state", "ticket_type_id", "state"),
    Index("ix_events_tickets_user_state", "user_id", "state"),
    Index("ix_events_tickets_order_id", "order_id"),
)

#: One row per order and kind ("entries" | "tickets") once the order has claimed: a later
#: claim for that order takes back what it recorded rather than what is in the cart now.
claims = Table(
    "events_claims",
    metadata,
    Column("order_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("session_id", String(64), nullable=True),
    Column("page_post_id", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("order_id", "kind"),
)

#: What each claim took: booking or ticket ids.
claim_items = Table(
    "events_claim_items",
    metadata,
    Column("order_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("item_id", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "kind", "item_id"),
)
