"""Alembic environment (async). The database URL comes from the caller or CART_DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from rose_cart.adapters.db.engine import make_engine
from rose_cart.adapters.db.tables import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    return (
        config.attributes.get("database_url")
        or os.environ.get("CART_DATABASE_URL")
        or "sqlite+aiosqlite:///var/cart.db"
    )


def _ours(name: object, type_: str, parent_names: object) -> bool:
    """Not the standalone events sibling's tables, which share the database in the demo
    and have migrations of their own."""
    return not (type_ == "table" and str(name).startswith("events_"))


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # SQLite alters a table by copying it and dropping the old one; with foreign keys
        # on, dropping ``orders`` would cascade and delete every payment attempt and item.
        # The pragma only takes effect outside a transaction, so it goes first.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can only alter tables by copying them.
        render_as_batch=connection.dialect.name == "sqlite",
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = make_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
