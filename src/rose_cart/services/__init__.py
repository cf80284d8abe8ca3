"""Use cases. Each opens and closes its own transactions; web handlers only call them."""

from __future__ import annotations
