from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rose_cart.bootstrap import build_services
from rose_cart.cli import main
from rose_cart.config import Settings


def test_migrate_then_one_reconcile_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CART_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert main(["migrate"]) == 0
    assert "database at head" in capsys.readouterr().out
    assert (tmp_path / "cli.db").exists()
    assert main(["check-payments"]) == 0
    assert "checked 0: 0 paid, 0 expired, 0 errors" in capsys.readouterr().out


def test_bad_configuration_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CART_PORT", "not-a-port")
    assert main(["migrate"]) == 2
    assert "configuration error: CART_PORT" in capsys.readouterr().err


OLD = "the secret the page keys were stored with"
NEW = "the secret that replaces it and goes first"


async def _ensure(database_url: str, secret: str, page_id: int, api_key: str) -> None:
    services = build_services(Settings(database_url=database_url, encryption_keys=(secret,)))
    try:
        await services.page_configs.ensure(page_id, f"M{page_id}", api_key)
    finally:
        await services.aclose()


async def _api_key(database_url: str, secret: str, page_id: int) -> str:
    services = build_services(Settings(database_url=database_url, encryption_keys=(secret,)))
    try:
        return (await services.page_configs.account_for(page_id)).credentials.api_key
    finally:
        await services.aclose()


@pytest.fixture
def keys_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated database whose pages 101 and 102 have keys stored with ``OLD``."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    monkeypatch.setenv("CART_DATABASE_URL", url)
    assert main(["migrate"]) == 0
    asyncio.run(_ensure(url, OLD, 101, "sup_sk_bakery"))
    asyncio.run(_ensure(url, OLD, 102, "sup_sk_garden"))
    return url


def test_rotate_keys_lets_the_old_encryption_key_go(
    keys_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CART_ENCRYPTION_KEYS", f"{NEW},{OLD}")
    capsys.readouterr()
    assert main(["rotate-keys"]) == 0
    out = capsys.readouterr()
    assert "re-encrypted 2 page keys" in out.out and out.err == ""
    assert asyncio.run(_api_key(keys_db, NEW, 101)) == "sup_sk_bakery"
    assert asyncio.run(_api_key(keys_db, NEW, 102)) == "sup_sk_garden"


def test_rotate_keys_names_the_pages_it_cannot_read_and_fails(
    keys_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_ensure(keys_db, "a secret nobody kept", 105, "sup_sk_lost"))
    monkeypatch.setenv("CART_ENCRYPTION_KEYS", f"{NEW},{OLD}")
    capsys.readouterr()
    assert main(["rotate-keys"]) == 1
    out = capsys.readouterr()
    assert "re-encrypted 2 page keys" in out.out
    assert "could not read the keys of pages 105" in out.err
    assert "sup_sk_lost" not in out.out + out.err
    assert asyncio.run(_api_key(keys_db, NEW, 101)) == "sup_sk_bakery"


def test_rotate_keys_refuses_two_ways_of_giving_the_keys(
    keys_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CART_ENCRYPTION_KEYS", f"{NEW},{OLD}")
    monkeypatch.setenv("CART_ENCRYPTION_KEY", OLD)
    assert main(["rotate-keys"]) == 2
    assert "not both" in capsys.readouterr().err
    # Nothing was touched: the old key alone still reads what is stored.
    assert asyncio.run(_api_key(keys_db, OLD, 101)) == "sup_sk_bakery"


@pytest.mark.parametrize(
    ("database", "redis", "named"),
    [
        ("sqlite+aiosqlite:///{tmp}/w.db", "", "SQLite"),
        ("postgresql+asyncpg://nobody@127.0.0.1:1/none", "", "in-memory cache"),
    ],
)
def test_serve_refuses_more_workers_than_the_settings_can_share(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database: str,
    redis: str,
    named: str,
) -> None:
    monkeypatch.setenv("CART_DATABASE_URL", database.format(tmp=tmp_path))
    monkeypatch.setenv("CART_REDIS_URL", redis)
    monkeypatch.setenv("CART_MIGRATE_ON_START", "false")
    assert main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "refusing to start 2 workers" in err and named in err
    assert "SumUp sandbox" in err  # standalone without CART_SUMUP_BASE_URL


SERVE_WITHOUT_SERVING = """
import sys
import uvicorn
from rose_cart.cli import main
uvicorn.run = lambda *args, **kwargs: print(
    "serving; migration tool loaded:", "alembic" in sys.modules
)
sys.exit(main(["serve"]))
"""


def _serve_env(tmp_path: Path, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CART_")}
    env.update(
        CART_MODE="standalone",
        CART_ENV="development",
        CART_DATABASE_URL=database,
        CART_REDIS_URL="",
        CART_SECRET_KEY=secrets.token_urlsafe(32),
        CART_INTERNAL_SECRET=secrets.token_urlsafe(32),
        CART_ENCRYPTION_KEY=secrets.token_urlsafe(32),
    )
    return env


def test_serve_migrates_in_a_process_of_its_own_first(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_SERVING],
        env=_serve_env(tmp_path, f"sqlite+aiosqlite:///{db}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "database at head" in done.stdout
    assert "serving; migration tool loaded: False" in done.stdout
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"cart_items", "orders"} <= tables


def test_serve_does_not_start_on_a_database_it_could_not_migrate(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_SERVING],
        env=_serve_env(tmp_path, "postgresql+asyncpg://nobody@127.0.0.1:1/none"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "could not be migrated; not starting" in done.stderr
    assert "serving" not in done.stdout
