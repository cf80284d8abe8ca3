"""ASGI entry point for servers: ``uvicorn rose_cart.asgi:app``. Settings from CART_*."""

from __future__ import annotations

from rose_cart.app import create_app

app = create_app()
