"""Pure domain model: no I/O, no framework imports."""

from __future__ import annotations
