"""ASGI entry point for servers: ``uvicorn rose_cart.asgi:app``. Settings from CART_*."""

from __future__ import annotations

import gc

from rose_cart.app import create_app

app = create_app()


@app.before_serving
async def _freeze_the_heap() -> None:
    """Once the worker has started, what it holds for good (modules, the app, the engine
    and pools, compiled templates and statements) is taken out of the garbage collector's
    view. Every full collection walked all of it, some 150,000 objects: one request in a
    few thousand waited 80 ms for it. Cycles made later are collected as before."""
    gc.collect()
    gc.freeze()
