"""SQLAlchemy (Core, async) persistence for the cart's own tables."""

from __future__ import annotations
