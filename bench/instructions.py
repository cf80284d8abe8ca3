"""Work per request, counted in instructions: the cart service's own share, without noise.

    .venv/bin/python bench/instructions.py                      # every row, both databases
    .venv/bin/python bench/instructions.py --rows cart_page --backends sqlite
    .venv/bin/python bench/instructions.py --cpu               # CPU ms instead (no valgrind)

``make bench``'s CPU per request moves by a third from one run to the next on a shared
machine; an instruction count does not. This drives the app in this process, through its
ASGI entry (the edge, Quart, the views, the database and cache), with the same visitors as
``bench/run.py`` (five lines in three marketplaces; adds of one to fresh lines), and counts
the instructions of ``--requests`` requests after ``--warmup`` ones under valgrind's
callgrind (Debian's ``valgrind``), every thread included. The server (uvicorn, HTTP
parsing) and the load generator are left out: they are the hello-world's too.

Run against another tree (an earlier commit's ``src``) with ``PYTHONPATH=that/src``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import (  # noqa: E402
    CART_CONTENTS,
    CHECKOUT_LINE,
    Server,
    free_port,
    postgres_database,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_answering,
)

ROWS = ("cart_page", "add_json", "add_form", "checkout")
ADD_PRODUCTS = (4, 7, 9, 11, 13)
CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')

Sent = dict[str, Any]


async def call(
    app: Any,
    method: str,
    path: str,
    cookie: str | None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Sent:
    """One request through the app's ASGI entry, as uvicorn makes it."""
    headers = [(b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    answer: Sent = {"status": 0, "headers": [], "body": b""}

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the visitor stays connected
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"], answer["headers"] = message["status"], message["headers"]
        else:
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer


def cookie_of(answer: Sent, cookie: str | None) -> str | None:
    for name, value in answer["headers"]:
        if name == b"set-cookie" and value.startswith(b"rose_session="):
            return str(value.decode().split(";", 1)[0])
    return cookie


async def visitor(app: Any, lines: tuple[tuple[int, int], ...]) -> tuple[str, str]:
    """A visitor holding ``lines`` who has seen the cart page once: (cookie, CSRF token)."""
    cookie = None
    for product_id, quantity in lines:
        body = json.dumps({"product_id": product_id, "quantity": quantity}).encode()
        answer = await call(app, "POST", "/api/v1/cart/items", cookie, body, "application/json")
        assert answer["status"] == 201, answer
        cookie = cookie_of(answer, cookie)
    page = await call(app, "GET", "/cart/", cookie)
    cookie = cookie_of(page, cookie)
    found = CSRF.search(page["body"])
    assert cookie and found, page
    return cookie, found.group(1).decode()


async def row_requests(app: Any, row: str, count: int) -> Callable[[], Awaitable[None]]:
    """One request of ``row`` per call, each checked for its status."""
    if row == "cart_page":
        cookie, _ = await visitor(app, CART_CONTENTS)

        async def page() -> None:
            answer = await call(app, "GET", "/cart/", cookie)
            assert answer["status"] == 200 and answer["body"].count(b'name="quantity"') == 5

        return page
    if row == "checkout":
        # A visitor per checkout, holding one bakery loaf: the order, the claims (none),
        # the SumUp checkout at the stand-in, as in `make bench`'s checkout row.
        shoppers = []
        product_id, quantity = CHECKOUT_LINE
        for _ in range(count):
            body = json.dumps({"product_id": product_id, "quantity": quantity}).encode()
            answer = await call(app, "POST", "/api/v1/cart/items", None, body, "application/json")
            assert answer["status"] == 201, answer
            shoppers.append(cookie_of(answer, None))

        async def checkout() -> None:
            answer = await call(app, "POST", "/api/v1/checkout", shoppers.pop(), b"{}",
                                "application/json")  # fmt: skip
            assert answer["status"] == 201, answer

        return checkout
    # Enough visitors that no line reaches its cap of 99.
    people = [await visitor(app, ((1, 1),)) for _ in range(count // (5 * 90) + 1)]
    done = 0

    async def add() -> None:
        nonlocal done
        cookie, token = people[done // (5 * 90)]
        product = ADD_PRODUCTS[done % 5]
        done += 1
        if row == "add_json":
            body = json.dumps({"product_id": product, "quantity": 1}).encode()
            answer = await call(app, "POST", "/api/v1/cart/items", cookie, body,
                                "application/json")  # fmt: skip
            assert answer["status"] == 201, answer
        else:
            body = f"product_id={product}&quantity=1&csrf_token={token}".encode()
            answer = await call(app, "POST", "/cart/add/", cookie, body,
                                "application/x-www-form-urlencoded")  # fmt: skip
            assert answer["status"] == 303, answer

    return add


async def drive(row: str, warmup: int, requests: int, callgrind: bool) -> float:
    """Run ``row`` in this process; CPU ms per request (0 under callgrind, which counts)."""
    import logging

    from rose_cart.app import create_app

    # As `serve` configures logging, written nowhere: the request log's cost stays in.
    # Nothing else runs on this loop: blocking calls here stop nothing.
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230
    logging.basicConfig(level=logging.INFO, stream=devnull)
    try:
        from rose_cart.cli import configure_logging
    except ImportError:  # an earlier tree, whose `serve` called basicConfig alone
        pass
    else:
        configure_logging()
    app = create_app()
    await app.startup()
    try:
        one = await row_requests(app, row, warmup + requests)
        for _ in range(warmup):
            await one()
        if callgrind:
            toggle = ["callgrind_control", "--instr=on", str(os.getpid())]
            subprocess.run(toggle, check=True, capture_output=True)  # noqa: ASYNC221
        started = time.process_time()
        for _ in range(requests):
            await one()
        spent = time.process_time() - started
        if callgrind:
            toggle[1] = "--instr=off"
            subprocess.run(toggle, check=True, capture_output=True)  # noqa: ASYNC221
        return spent * 1000 / requests
    finally:
        await app.shutdown()


def environment(backend: str, tmp: Path, args: argparse.Namespace) -> tuple[dict[str, str], Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CART_")}
    env.update(
        CART_MODE="standalone", CART_ENV="development", CART_RUN_RECONCILER="false",
        CART_DEV_LOGIN="false", CART_SUMUP_BASE_URL="http://127.0.0.1:9",
        CART_SECRET_KEY=secrets.token_urlsafe(32), CART_INTERNAL_SECRET=secrets.token_urlsafe(32),
        CART_ENCRYPTION_KEY=secrets.token_urlsafe(32),
    )  # fmt: skip
    if backend == "sqlite":
        env.update(CART_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'cart.db'}", CART_REDIS_URL="")
        return env, None
    from run import flush_redis

    db = postgres_database(args.postgres, f"rose_cart_instructions_{os.getpid()}")
    flush_redis(args.redis_url)
    env.update(CART_DATABASE_URL=db.url, CART_REDIS_URL=args.redis_url)
    return env, db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--cpu", action="store_true", help="CPU ms per request, no valgrind")
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row, mode = args.child.split(":")
        spent = asyncio.run(drive(row, args.warmup, args.requests, mode == "callgrind"))
        print(f"CPU {spent:.3f}")
        return 0
    if not args.cpu and not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind); use --cpu", file=sys.stderr)
        return 1
    unit = "CPU ms/request" if args.cpu else "instructions/request"
    print(f"{'backend':<10} {'row':<10} {unit}")
    with tempfile.TemporaryDirectory() as logs:
        # The checkout row pays at the stand-in, in a process of its own: not counted.
        standin = start_standin(Path(logs)) if "checkout" in args.rows.split(",") else None
        try:
            for backend in args.backends.split(","):
                for row in args.rows.split(","):
                    with tempfile.TemporaryDirectory() as tmp:
                        env, db = environment(backend, Path(tmp), args)
                        if standin is not None:
                            env["CART_SUMUP_BASE_URL"] = standin.base
                        try:
                            print(f"{backend:<10} {row:<10} {measure(row, args, env, Path(tmp))}")
                        finally:
                            if db is not None:
                                db.drop()
        finally:
            if standin is not None:
                stop_server(standin)
    return 0


def start_standin(logdir: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CART_")}
    standin = start_server("sumup-standin", uvicorn_argv(BENCH, "sumup_standin:app", port, 1),
                           port, env, logdir)  # fmt: skip
    wait_until_answering(standin, "/v0.1/checkouts", 30.0)
    return standin


def measure(row: str, args: argparse.Namespace, env: dict[str, str], tmp: Path) -> str:
    child = [sys.executable, __file__, "--child", f"{row}:{'cpu' if args.cpu else 'callgrind'}",
             "--warmup", str(args.warmup), "--requests", str(args.requests)]  # fmt: skip
    if args.cpu:
        done = subprocess.run(child, env=env, capture_output=True, text=True, check=False)
        found = re.search(r"^CPU (\S+)", done.stdout, re.MULTILINE)
        return found.group(1) if found else f"failed: {done.stderr.strip()[-300:]}"
    out = tmp / "callgrind.out"
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    done = subprocess.run(argv + child, env=env, capture_output=True, text=True, check=False)
    totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE) if out.exists() else None
    if done.returncode != 0 or totals is None:
        return f"failed: {done.stderr.strip()[-300:]}"
    return f"{int(totals.group(1)) // args.requests:,}"


if __name__ == "__main__":
    sys.exit(main())
