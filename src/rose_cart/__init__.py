"""Rose Ash cart: the cart, checkout and order service of the Rose Ash co-op platform."""

from __future__ import annotations

__version__ = "0.1.0"
