"""Alembic environment of the events sibling (async): its own tables and its own version
table, so it shares a database with the cart the way a separate service would share a
server, never touching the cart's tables."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from rose_cart.adapters.db.engine import make_engine
from rose_cart.standalone.events.tables import metadata

VERSION_TABLE = "events_alembic_version"

config = context.config
target_metadata = metadata


def _url() -> str:
    return (
        config.attributes.get("database_url")
        or os.environ.get("CART_DATABASE_URL")
        or "sqlite+aiosqlite:///var/cart.db"
    )


def _ours(name: Any, type_: str, parent_names: Any) -> bool:
    """Only the events tables: the cart's, in the same database, are someone else's."""
    if type_ == "table":
        return bool(name) and str(name).startswith("events_")
    return True


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table=VERSION_TABLE,
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # As for the cart: a table copied by a batch migration must not cascade deletes.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table=VERSION_TABLE,
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
