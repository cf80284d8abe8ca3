"""The server's entry point: a worker takes what it holds for good out of the garbage
collector's view once it has started."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

PROGRAM = """
import asyncio, gc
from rose_cart.asgi import app

async def main():
    before = gc.get_freeze_count()
    await app.startup()
    try:
        print(before, gc.get_freeze_count())
    finally:
        await app.shutdown()

asyncio.run(main())
"""


def test_a_worker_freezes_its_heap_once_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CART_")}
    env.update(
        CART_MODE="standalone",
        CART_ENV="development",
        CART_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cart.db'}",
        CART_REDIS_URL="",
        CART_RUN_RECONCILER="false",
        CART_SECRET_KEY=secrets.token_urlsafe(32),
        CART_INTERNAL_SECRET=secrets.token_urlsafe(32),
        CART_ENCRYPTION_KEY=secrets.token_urlsafe(32),
    )
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = (int(n) for n in done.stdout.split())
    assert before == 0
    # The app, its services and every module: far more than a bare interpreter holds.
    assert after > 50_000
