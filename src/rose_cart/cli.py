"""rose-cart serve | demo | migrate | worker | check-payments | rotate-keys"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys

from rose_cart.config import ConfigError, Settings, load_settings


def _serve(workers: int) -> int:
    import uvicorn

    settings = load_settings()
    settings.check()
    if workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    problems = settings.multi_worker_problems() if workers > 1 else []
    if problems:
        print(
            f"refusing to start {workers} workers: "
            + "; ".join(problems)
            + ". Start one worker (--workers 1), or change those settings.",
            file=sys.stderr,
        )
        return 2
    if settings.migrate_on_start:
        # Done here once, so workers need not race to do it; and in a process of its own,
        # so that the one that serves never holds the migration tool (some 8 MB).
        migrated = subprocess.run([sys.executable, "-m", "rose_cart.cli", "migrate"], check=False)
        if migrated.returncode != 0:
            print("the database could not be migrated; not starting", file=sys.stderr)
            return migrated.returncode
        os.environ["CART_MIGRATE_ON_START"] = "false"
    uvicorn.run(
        "rose_cart.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="info",
        access_log=False,
    )
    return 0


async def _rotate_keys(settings: Settings) -> int:
    from rose_cart.bootstrap import build_services

    services = build_services(settings)
    try:
        report = await services.page_configs.rotate_keys()
    finally:
        await services.aclose()
    for part in report.parts:
        print(f"re-encrypted {part.rotated} {part.kind} keys with the newest encryption key")
        if part.changed:
            print(f"{part.changed} {part.kind} keys were set anew meanwhile and left as set")
        if part.unreadable:
            ids = ", ".join(str(i) for i in part.unreadable)
            print(
                f"could not read the keys of {part.kind}s {ids}: no configured encryption key "
                "decrypts them; keep the secret that made them in CART_ENCRYPTION_KEYS, or set "
                "those keys anew",
                file=sys.stderr,
            )
    return 0 if report.complete else 1


def configure_logging() -> None:
    """Lines of time, level, logger and message on standard error, INFO and up."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every URL it calls, and webhook URLs carry a secret token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The request log writes a line per request. No line shows where it was logged from
    # or in which thread or process, so these are not looked up for every record (the
    # logging HOWTO's "Optimization"; the caller's frame was the dearest part).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rose-cart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (settings from CART_*)")
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("demo", help="standalone demo: SQLite, reference siblings, SumUp sandbox")
    sub.add_parser(
        "migrate",
        help="upgrade the database schema to the newest revision (standalone: the events "
        "sibling's too)",
    )
    worker = sub.add_parser(
        "worker", help="reconcile payments, expire stale orders, run the outbox relay"
    )
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    sub.add_parser("check-payments", help="one reconciliation pass (same as worker --once)")
    sub.add_parser(
        "rotate-keys",
        help="re-encrypt every stored page key with the newest of CART_ENCRYPTION_KEYS",
    )
    args = parser.parse_args(argv)
    configure_logging()

    try:
        if args.command == "migrate":
            from rose_cart.bootstrap import migrate

            settings = load_settings()
            migrate(settings)
            also = " (and the standalone events sibling's tables)" if settings.standalone else ""
            print(f"database at head{also}: {settings.database_url.split('@')[-1]}")
            return 0
        if args.command == "demo":
            os.environ.setdefault("CART_MODE", "standalone")
            os.environ.setdefault("CART_DEMO_DATA", "true")
            # The demo's admin is whoever logs in as "admin" on the development login.
            os.environ.setdefault("CART_ADMIN_USERS", "admin")
            settings = load_settings()
            print(
                f"Rose Ash cart demo on {settings.base_url}/  (CART_PORT picks another port; "
                "log in with any name without spaces, or not at all)"
            )
            return _serve(1)
        if args.command == "serve":
            return _serve(args.workers)
        if args.command in {"worker", "check-payments"}:
            from rose_cart.worker import run_worker

            once = args.command == "check-payments" or args.once
            return asyncio.run(run_worker(load_settings(), once=once))
        if args.command == "rotate-keys":
            return asyncio.run(_rotate_keys(load_settings()))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
