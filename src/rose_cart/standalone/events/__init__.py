"""The reference events sibling: its own tables, migrations, demo data, pages and JSON API,
mounted in the standalone process in place of the separate events service."""

from __future__ import annotations

from rose_cart.standalone.events.calendar import ReferenceCalendar

__all__ = ["ReferenceCalendar"]
