"""Cart service throughput, as ratios against a Quart hello-world in the same run (DESIGN §12).

    make bench                      # or: .venv/bin/python bench/run.py [--duration 3]

For each set-up (SQLite; PostgreSQL + Redis; at 1 and 2 workers) it starts the cart service
(``rose_cart.cli serve --workers N``) and a hello-world with as many workers on 127.0.0.1,
loads them from a second process (``wrk``, or ``bench/pyload.py`` when wrk is missing),
prints a table per set-up and writes ``bench/results/latest.json``. The checkout row's
payments go to a SumUp stand-in in its own process (``bench/sumup_standin.py``). Every load
run is bounded in time (and, for pyload, in request count); every server is stopped and
every database made for the run is dropped at the end.
Exit status: 0, unless a server failed to start (1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
HOST = "127.0.0.1"  # load only ever goes here
COOKIE_NAME = "rose_session"

# What the GET endpoints' visitor has in the cart: three marketplaces, five lines.
CART_CONTENTS: tuple[tuple[int, int], ...] = ((1, 2), (2, 1), (6, 1), (7, 3), (11, 1))
# Products the add-to-cart runs add one at a time: the demo products with no own limit,
# so a line can grow to the hard cap of 99 (HARD_MAX_PER_LINE) before the service says no.
ADD_PRODUCTS: tuple[int, ...] = (4, 7, 9, 11, 13)
LINE_CAP = 99
# What each checkout visitor holds: one bakery loaf (one page, so the whole cart checks out).
CHECKOUT_LINE = (1, 1)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class ServerFailed(RuntimeError):
    """A server did not start or did not answer."""


@dataclass
class Endpoint:
    key: str
    label: str
    method: str
    path: str
    budget: str
    kind: str  # ceiling | hot | page | write | checkout
    ok_status: int = 200
    content_type: str = "application/json"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass
class Run:
    endpoint: Endpoint
    result: dict[str, Any] = field(default_factory=dict)
    warmup: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float | None = None
    error: str | None = None
    check: dict[str, Any] = field(default_factory=dict)
    answers_after: bool | None = None
    new_db_sessions: int | None = None
    db_check: dict[str, Any] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)


ENDPOINTS = {
    "hello": Endpoint("hello", "hello-world GET /", "GET", "/", "ceiling", "ceiling"),
    "summary": Endpoint(
        "summary",
        "GET /internal/cart/summary",
        "GET",
        "/internal/cart/summary",
        ">= 0.75 of hello, <= 0.25 ms",
        "hot",
    ),
    "cart_mini": Endpoint(
        "cart_mini",
        "GET /internal/fragments/cart-mini",
        "GET",
        "/internal/fragments/cart-mini",
        ">= 0.75 of hello, <= 0.25 ms",
        "hot",
    ),
    "cart_page": Endpoint(
        "cart_page", "GET /cart/", "GET", "/cart/", "<= 1.0 ms, fixed queries", "page"
    ),
    "add_json": Endpoint(
        "add_json",
        "POST /api/v1/cart/items (JSON)",
        "POST",
        "/api/v1/cart/items",
        "<= 0.8 ms",
        "write",
        ok_status=201,
    ),
    "add_form": Endpoint(
        "add_form",
        "POST /cart/add/ (form)",
        "POST",
        "/cart/add/",
        "<= 0.8 ms",
        "write",
        ok_status=303,
        content_type="application/x-www-form-urlencoded",
    ),
    "checkout": Endpoint(
        "checkout",
        "POST /api/v1/checkout (+SumUp)",
        "POST",
        "/api/v1/checkout",
        ">= 200 orders/s on the machine",
        "checkout",
        ok_status=201,
    ),
}
ROWS = ("summary", "cart_mini", "cart_page", "add_json", "add_form", "checkout")
#: Budgets of the issue: ratio to hello (hot rows), server CPU ms per request.
HOT_RATIO, HOT_CPU_MS, PAGE_CPU_MS, WRITE_CPU_MS, P99_OVER_P50 = 0.75, 0.25, 1.0, 0.8, 5.0
RSS_MB = 120.0
#: The checkout's aim is for the machine: judged on a set-up with a worker per core (on
#: SQLite, which runs one worker, never); elsewhere the row is reported, not judged.
CHECKOUT_ORDERS_PER_S = 200.0


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(
    name: str, argv: list[str], port: int, env: dict[str, str], logdir: Path
) -> Server:
    log = logdir / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(name, process, port, log)


def uvicorn_argv(app_dir: Path, app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(app_dir),
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def wait_until_answering(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(base_url=server.base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise ServerFailed(
                    f"{server.name} exited with {server.process.returncode}:\n{tail(server.log)}"
                )
            try:
                response = client.get(path)
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if response.status_code < 500:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            time.sleep(0.1)
    raise ServerFailed(
        f"{server.name} did not answer {path} within {timeout:.0f} s ({last}):\n{tail(server.log)}"
    )


def stop_server(server: Server) -> None:
    process = server.process
    if process.poll() is None:
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=5)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pid:
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (all its threads) and of its direct children (the
    workers, when uvicorn runs several)."""
    own = _stat(pid)
    if own is None:
        return None
    return own[1] + sum((_stat(c) or (0, 0.0))[1] for c in children(pid))


def rss_mb(pid: int) -> list[float]:
    """Resident memory of each worker: the children of a multi-worker server, or the
    process itself."""
    workers = [c for c in children(pid) if "python" in _cmdline(c)] or [pid]
    sizes = []
    for worker in workers:
        with suppress(OSError, ValueError):
            for line in Path(f"/proc/{worker}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextmanager
def servers_stopped(servers: list[Server]) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            stop_server(server)


# --------------------------------------------------------------------------- load


@dataclass
class LoadSpec:
    port: int
    path: str
    method: str = "GET"
    cookie: str | None = None
    pool: Path | None = None
    content_type: str = "application/json"
    max_requests: int | None = None  # pyload only: never more than the pool holds


class LoadGenerator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        wanted = args.loadgen
        self.wrk = shutil.which("wrk") if wanted in {"auto", "wrk"} else None
        if wanted in {"auto", "wrk"} and not self.wrk:
            print(
                "wrk is not installed (apt-get install wrk); using bench/pyload.py",
                file=sys.stderr,
            )
        self.name = "wrk" if self.wrk else "pyload"

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": self.name,
            "connections": self.args.connections,
            "duration_s": self.args.duration,
            "warmup_s": self.args.warmup,
        }
        if self.wrk:
            info["threads"] = self.args.threads
            with suppress(OSError, subprocess.SubprocessError):
                version = subprocess.run(
                    [self.wrk, "--version"], capture_output=True, text=True, timeout=5
                )
                info["version"] = (version.stdout or version.stderr).splitlines()[0]
        else:
            info["max_requests"] = self.args.max_requests
        return info

    def run(self, spec: LoadSpec, seconds: int, python: bool = False) -> dict[str, Any]:
        """One bounded load run. ``python``: use pyload, whose connections finish their
        request in flight before closing (wrk drops them), and which stops at a request
        count (what a pool that must not wrap needs)."""
        if self.wrk and not python and spec.max_requests is None:
            argv = [
                self.wrk,
                f"-t{self.args.threads}",
                f"-c{self.args.connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(BENCH / "wrk.lua"),
                f"http://{HOST}:{spec.port}{spec.path}",
            ]
            env = dict(os.environ)
            env["BENCH_THREADS"] = str(self.args.threads)
            env["BENCH_METHOD"] = spec.method
            env["BENCH_COOKIE"] = spec.cookie or ""
            env["BENCH_POOL"] = str(spec.pool) if spec.pool else ""
            env["BENCH_CONTENT_TYPE"] = spec.content_type
        else:
            argv = [
                sys.executable,
                str(BENCH / "pyload.py"),
                "--port",
                str(spec.port),
                "--path",
                spec.path,
                "--method",
                spec.method,
                "--connections",
                str(self.args.connections),
                "--duration",
                str(seconds),
                "--max-requests",
                str(spec.max_requests or self.args.max_requests),
                "--content-type",
                spec.content_type,
            ]
            if spec.cookie:
                argv += ["--cookie", spec.cookie]
            if spec.pool:
                argv += ["--pool", str(spec.pool)]
            env = dict(os.environ)
        completed = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=seconds + 30
        )
        match = re.search(r"^BENCHJSON (.*)$", completed.stdout, re.MULTILINE)
        if completed.returncode != 0 or not match:
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({completed.returncode}): "
                f"{completed.stderr.strip()[-500:] or completed.stdout.strip()[-500:]}"
            )
        result: dict[str, Any] = json.loads(match.group(1))
        result["loadgen"] = "pyload" if "status_counts" in result else "wrk"
        return result


# --------------------------------------------------------------------------- databases


class Database:
    """The cart's database for one set-up, and the counts the bench checks in it."""

    def __init__(self, url: str, dropper: Callable[[], None] | None = None) -> None:
        self.url = url
        self._drop = dropper

    def scalar(self, sql: str) -> int:
        if self.url.startswith("sqlite"):
            path = self.url.split("///", 1)[1]
            with sqlite3.connect(path, timeout=30) as conn:
                return int(conn.execute(sql).fetchone()[0] or 0)
        return int(asyncio.run(_pg_scalar(_pg_dsn(self.url), sql)) or 0)

    def quantities(self) -> int:
        return self.scalar("SELECT COALESCE(SUM(quantity), 0) FROM cart_items")

    def orders(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM orders")

    def sessions(self) -> int | None:
        """PostgreSQL sessions ever opened to this database (None on SQLite)."""
        if self.url.startswith("sqlite"):
            return None
        name = self.url.rsplit("/", 1)[1]
        return int(
            asyncio.run(
                _pg_scalar(
                    _pg_dsn(self.url.rsplit("/", 1)[0] + "/postgres"),
                    "SELECT pg_stat_clear_snapshot(), "
                    f"(SELECT sessions FROM pg_stat_database WHERE datname = '{name}')",
                    column=1,
                )
            )
            or 0
        )

    def drop(self) -> None:
        if self._drop is not None:
            self._drop()


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_scalar(dsn: str, sql: str, column: int = 0) -> Any:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(sql)
        return None if row is None else row[column]
    finally:
        await conn.close()


def postgres_database(base: str, name: str) -> Database:
    admin = _pg_dsn(base.rstrip("/") + "/postgres")

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    return Database(f"{base.rstrip('/')}/{name}", lambda: asyncio.run(drop()))


def flush_redis(url: str) -> None:
    from redis import Redis

    client = Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --------------------------------------------------------------------------- visitors


def session_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE_NAME:
            return f"{COOKIE_NAME}={rest.split(';', 1)[0]}"
    return None


def add_item(
    client: httpx.Client, cookie: str | None, product_id: int, quantity: int
) -> tuple[httpx.Response, str | None]:
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    body = json.dumps({"product_id": product_id, "quantity": quantity})
    client.cookies.clear()  # the visitor is only who the Cookie header says
    response = client.post("/api/v1/cart/items", content=body, headers=headers)
    client.cookies.clear()
    return response, session_cookie(response) or cookie


def visit_cart(client: httpx.Client, cookie: str) -> tuple[str, str | None]:
    """What a browser does on its first cart page: keep the cookie that now carries a CSRF
    token. Returns the cookie and the token."""
    client.cookies.clear()
    response = client.get("/cart/", headers={"Cookie": cookie})
    client.cookies.clear()
    found = CSRF.search(response.text)
    return session_cookie(response) or cookie, found.group(1) if found else None


def describe_response(response: httpx.Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "content_type": response.headers.get("content-type", ""),
        "bytes": len(response.content),
        "body_start": response.text[:300],
    }


def prepare_visitor(client: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    """A visitor with five lines in three marketplaces, who has seen the cart page once."""
    cookie: str | None = None
    problems: list[dict[str, Any]] = []
    for product_id, quantity in CART_CONTENTS:
        response, cookie = add_item(client, cookie, product_id, quantity)
        if response.status_code >= 300:
            problems.append({"product_id": product_id, **describe_response(response)})
    if cookie is None:
        raise ServerFailed(f"adding to the cart gave no {COOKIE_NAME} cookie: {problems}")
    cookie, _ = visit_cart(client, cookie)
    return cookie, problems


def prepare_visitors(
    base: str, count: int, make: Callable[[httpx.Client], str | None]
) -> tuple[list[str], int]:
    """``count`` visitors made by ``make`` (a pool line each, or None when it failed), a
    few at a time. Returns the lines and how many failed."""

    def batch(n: int) -> list[str | None]:
        with httpx.Client(base_url=base, timeout=15.0) as client:
            return [make(client) for _ in range(n)]

    workers = 4
    shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        made = [line for part in pool.map(batch, shares) for line in part]
    lines = [line for line in made if line]
    return lines, len(made) - len(lines)


def write_pool(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# --------------------------------------------------------------------------- report


def rate(run: Run) -> float:
    duration = run.result.get("duration_us", 0) / 1e6
    return run.result.get("requests", 0) / duration if duration > 0 else 0.0


def cpu_per_request(run: Run) -> float | None:
    requests = int(run.result.get("requests", 0))
    if run.cpu_seconds is None or not requests:
        return None
    return run.cpu_seconds * 1000 / requests


def mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v]
    return sum(present) / len(present) if present else None


def errors_of(result: dict[str, Any]) -> tuple[int, int]:
    socket_errors = sum(
        int(result.get(k, 0)) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return int(result.get("status_errors", 0)), socket_errors


def summarise(run: Run, brackets: list[Run], workers: int) -> dict[str, Any]:
    """One table row; the ceiling is the mean of the hello runs just before and after."""
    r = run.result
    rps = rate(run)
    ceiling = mean([rate(h) for h in brackets])
    hello_cpu = mean([cpu_per_request(h) for h in brackets])
    cpu = cpu_per_request(run)
    status_errors, socket_errors = errors_of(r)
    counts = r.get("status_counts") or {}
    unexpected = sum(n for s, n in counts.items() if int(s) != run.endpoint.ok_status)
    p50 = r.get("p50_us", 0) / 1000 if "p50_us" in r else None
    p99 = r.get("p99_us", 0) / 1000 if "p99_us" in r else None
    row: dict[str, Any] = {
        "endpoint": run.endpoint.key,
        "label": run.endpoint.label,
        "workers": workers,
        "loadgen": r.get("loadgen"),
        "requests": int(r.get("requests", 0)),
        "rps": round(rps, 1),
        "rps_per_worker": round(rps / workers, 1),
        "ceiling_rps": round(ceiling, 1) if ceiling else None,
        "ratio": round(rps / ceiling, 3) if ceiling and rps else None,
        # Same comparison by server CPU per request: what the ratio would be if both were
        # CPU-bound on an otherwise idle core; much less disturbed by neighbours' load.
        "cpu_ratio": round(hello_cpu / cpu, 3) if hello_cpu and cpu else None,
        "p50_ms": round(p50, 2) if p50 is not None else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "p99_over_p50": round(p99 / p50, 1) if p50 and p99 else None,
        "non_2xx": status_errors + unexpected,
        "socket_errors": socket_errors,
        "status_counts": counts or None,
        "cpu_ms_measured": round(cpu, 3) if cpu is not None else None,
        "cpu_ms_over_hello": round(cpu - hello_cpu, 3) if cpu and hello_cpu else None,
        "new_db_sessions": run.new_db_sessions,
        "db_check": run.db_check or None,
        "rss_mb": run.rss_mb or None,
        "budget": run.endpoint.budget,
        "check": run.check,
        "answers_after_load": run.answers_after,
        "error": run.error,
    }
    row["verdict"] = verdict(run.endpoint, row)
    return row


def verdict(endpoint: Endpoint, row: dict[str, Any]) -> str:
    """The first budget the row misses, or ok."""
    status = row["check"].get("status") if row["check"] else None
    if row["error"]:
        return "FAILED"
    if row["non_2xx"] or row["socket_errors"]:
        return "ERRORS"
    if status is not None and status != endpoint.ok_status:
        return "ERRORS"
    if row.get("db_check") and not row["db_check"].get("ok", True):
        return "DB"
    if row["answers_after_load"] is False:
        return "HUNG"
    cpu = row["cpu_ms_measured"]
    fills_machine = row["workers"] >= (os.cpu_count() or 1)
    if endpoint.kind == "checkout" and fills_machine and row["rps"] < CHECKOUT_ORDERS_PER_S:
        return "SLOW"
    if endpoint.kind == "hot":
        if row["ratio"] is not None and row["ratio"] < HOT_RATIO:
            return "BELOW"
        if cpu is not None and cpu > HOT_CPU_MS:
            return "CPU"
    if endpoint.kind == "page" and cpu is not None and cpu > PAGE_CPU_MS:
        return "CPU"
    if endpoint.kind == "write" and cpu is not None and cpu > WRITE_CPU_MS:
        return "CPU"
    if row.get("p99_over_p50") and row["p99_over_p50"] > P99_OVER_P50:
        return "TAIL"
    if row.get("new_db_sessions"):
        return "CHURN"
    if row.get("rss_mb") and max(row["rss_mb"]) > RSS_MB:
        return "RSS"
    return "ok"


def fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    header = (
        f"{'endpoint':<33} {'req/s':>7} {'hello':>7} {'ratio':>6} {'cpu-r':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99/50':>6} {'cpu ms':>7} {'errs':>5} {'conns':>5} "
        f"{'RSS MB':>7} {'verdict':>7}  budget"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        rss = max(row["rss_mb"]) if row.get("rss_mb") else None
        print(
            f"{row['label']:<33} {fmt(row['rps'], '.0f'):>7} {fmt(row['ceiling_rps'], '.0f'):>7} "
            f"{fmt(row['ratio'], '.2f'):>6} {fmt(row['cpu_ratio'], '.2f'):>6} "
            f"{fmt(row['p50_ms'], '.1f'):>7} {fmt(row['p99_ms'], '.1f'):>7} "
            f"{fmt(row.get('p99_over_p50'), '.1f'):>6} "
            f"{fmt(row['cpu_ms_measured'], '.3f'):>7} "
            f"{row['non_2xx'] + row['socket_errors']:>5} {fmt(row.get('new_db_sessions')):>5} "
            f"{fmt(rss, '.0f'):>7} {row['verdict']:>7}  {row['budget']}"
        )


LEGEND = """\
hello: mean req/s of the hello-world (same number of workers) just before and after;
ratio = req/s / hello; cpu-r: hello's server CPU per request / this one's; cpu ms: server
CPU (all workers, from /proc) per request; errs: status >= 400 or not the expected one,
plus socket errors; conns: new PostgreSQL sessions during the measured run; RSS MB: the
largest worker after the run. Verdicts: BELOW (ratio < 0.75), CPU (over the row's CPU
budget), SLOW (checkout under 200 orders/s with a worker per core: the aim is the
machine's, so it is judged only there), TAIL (p99 > 5 x p50), CHURN (new sessions), RSS
(> 120 MB), DB (the database does not hold what the answers said), ERRORS, HUNG, FAILED."""


# --------------------------------------------------------------------------- set-ups


@dataclass
class Setup:
    backend: str  # sqlite | postgres
    workers: int

    @property
    def name(self) -> str:
        storage = "SQLite" if self.backend == "sqlite" else "PostgreSQL + Redis"
        return f"{storage}, {self.workers} worker{'s' if self.workers > 1 else ''}"


@dataclass
class CartProcess:
    """The cart service as ``rose-cart serve`` runs it; restarted (same database, same
    secrets) before each endpoint, so one endpoint's aftermath cannot spoil the next."""

    env: dict[str, str]
    workers: int
    logdir: Path
    timeout: float
    servers: list[Server]
    label: str
    starts: int = 0

    def start(self) -> Server:
        self.stop()
        port = free_port()
        self.starts += 1
        server = start_server(
            f"cart-{self.label}-{self.starts}",
            [sys.executable, "-m", "rose_cart.cli", "serve", "--workers", str(self.workers)],
            port,
            dict(self.env, CART_PORT=str(port)),
            self.logdir,
        )
        self.servers.append(server)
        wait_until_answering(server, "/internal/cart/summary", self.timeout)
        return server

    def stop(self) -> None:
        for server in self.servers:
            if server.name.startswith(f"cart-{self.label}-"):
                stop_server(server)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--max-requests", type=int, default=500_000, help="pyload: cap per run")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres (PostgreSQL + Redis)",
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CART_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432"
        ),
        help="PostgreSQL server (a database rose_cart_bench_<pid> is made and dropped)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("CART_BENCH_REDIS", "redis://127.0.0.1:6379/3"),
        help="Redis database for the PostgreSQL set-ups (emptied before each)",
    )
    args = parser.parse_args(argv)
    args.duration = max(1, args.duration)
    args.warmup = max(0, args.warmup)
    args.connections = max(1, args.connections)
    args.threads = max(1, min(args.threads, args.connections))
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.workers = [max(1, int(w)) for w in args.workers.split(",") if w.strip()]
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip() in ROWS]
    return args


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "uvicorn",
        "quart",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "hiredis",
    ):
        with suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gen = LoadGenerator(args)
    started_at = datetime.now(UTC)
    print(
        f"rose_cart bench: {gen.name}, {args.connections} connections, "
        f"{args.warmup}+{args.duration} s per endpoint, {os.cpu_count()} cores"
    )
    setups = [Setup(b, w) for b in args.backends for w in args.workers]
    if "postgres" in args.backends and not (
        reachable("127.0.0.1", 5432) and reachable("127.0.0.1", 6379)
    ):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: SQLite only", file=sys.stderr)
        setups = [s for s in setups if s.backend != "postgres"]
    with tempfile.TemporaryDirectory(prefix="rose-bench-") as tmp:
        tmpdir = Path(tmp)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("CART_")}
        base_env["PYTHONDONTWRITEBYTECODE"] = "1"
        servers: list[Server] = []
        report: dict[str, Any] = {"setups": []}
        try:
            with servers_stopped(servers):
                try:
                    port = free_port()
                    standin = start_server(
                        "sumup-standin",
                        uvicorn_argv(BENCH, "sumup_standin:app", port, 1),
                        port,
                        base_env,
                        tmpdir,
                    )
                    servers.append(standin)
                    wait_until_answering(standin, "/v0.1/checkouts", args.startup_timeout)
                except (ServerFailed, OSError) as exc:
                    print(f"the SumUp stand-in failed to start: {exc}", file=sys.stderr)
                    return 1
                for setup in setups:
                    try:
                        report["setups"].append(
                            bench_setup(args, gen, setup, standin, base_env, tmpdir, servers)
                        )
                    except ServerFailed as exc:
                        print(f"{setup.name}: a server failed: {exc}", file=sys.stderr)
                        return 1
        finally:
            logs = RESULTS / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            for stale in logs.glob("*.log"):
                stale.unlink()
            for server in servers:
                with suppress(OSError):
                    shutil.copyfile(server.log, logs / server.log.name)

    print()
    print(LEGEND)
    report.update(
        date=started_at.isoformat(timespec="seconds"),
        machine={
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_end": os.getloadavg(),
        },
        versions=versions(),
        loadgen=gen.describe(),
        command=" ".join(["python", "bench/run.py", *sys.argv[1:]]),
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nwrote {shown}")
    return 0


def check(server: Server, spec: LoadSpec) -> dict[str, Any]:
    """One request outside the load, to see status and body."""
    headers = {"Cookie": spec.cookie} if spec.cookie else {}
    try:
        with httpx.Client(base_url=server.base, timeout=15.0) as client:
            return describe_response(client.get(spec.path, headers=headers))
    except httpx.HTTPError as exc:
        return {"status": None, "error": repr(exc)}


def check_post(server: Server, spec: LoadSpec) -> dict[str, Any]:
    """The pool's first request once more, after the load, to see status and body."""
    if spec.pool is None or not spec.pool.exists():
        return {}
    first = spec.pool.read_text(encoding="utf-8").splitlines()[:1]
    if not first:
        return {}
    cookie, body = first[0].split("\t", 1)
    headers = {"Cookie": cookie, "Content-Type": spec.content_type}
    try:
        with httpx.Client(base_url=server.base, timeout=15.0) as client:
            return describe_response(client.post(spec.path, content=body, headers=headers))
    except httpx.HTTPError as exc:
        return {"status": None, "error": repr(exc)}


def probe(server: Server, cookie: str | None) -> bool:
    """Does the cart still answer a page that reads the database?"""
    headers = {"Cookie": cookie} if cookie else {}
    try:
        with httpx.Client(base_url=server.base, timeout=5.0) as client:
            return client.get("/cart/", headers=headers).status_code < 500
    except httpx.HTTPError:
        return False


def measure(
    gen: LoadGenerator, endpoint: Endpoint, spec: LoadSpec, server: Server, db: Database
) -> Run:
    run = Run(endpoint)
    try:
        if gen.args.warmup > 0:
            run.warmup = gen.run(spec, gen.args.warmup, python=True)
        sessions = db.sessions()
        if sessions is not None:
            time.sleep(1.2)  # backends report their statistics at most once a second
            sessions = db.sessions()
        before = cpu_seconds(server.process.pid)
        run.result = gen.run(spec, gen.args.duration)
        after = cpu_seconds(server.process.pid)
        if before is not None and after is not None:
            run.cpu_seconds = after - before
        if sessions is not None:
            time.sleep(1.2)  # backends report their statistics at most once a second
            run.new_db_sessions = max(0, (db.sessions() or 0) - sessions)
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        run.error = str(exc)
    if server.process.poll() is not None:
        run.error = (run.error or "") + f" server exited: {tail(server.log, 10)}"
    return run


def answered(result: dict[str, Any], ok_status: int) -> int:
    """Requests the load generator saw answered as expected."""
    counts = result.get("status_counts")
    if counts is not None:
        return int(counts.get(str(ok_status), 0))
    status_errors, socket_errors = errors_of(result)
    return int(result.get("requests", 0)) - status_errors - socket_errors


def bench_setup(
    args: argparse.Namespace,
    gen: LoadGenerator,
    setup: Setup,
    standin: Server,
    base_env: dict[str, str],
    tmpdir: Path,
    servers: list[Server],
) -> dict[str, Any]:
    print(f"\n== {setup.name}")
    label = f"{setup.backend}-{setup.workers}"
    if setup.backend == "postgres":
        db = postgres_database(args.postgres, f"rose_cart_bench_{os.getpid()}_{setup.workers}")
        flush_redis(args.redis_url)
        redis_url = args.redis_url
    else:
        db = Database(f"sqlite+aiosqlite:///{tmpdir / f'bench-{label}.db'}")
        redis_url = ""
    env = dict(base_env)
    env.update(
        CART_MODE="standalone",
        CART_ENV="development",
        CART_HOST=HOST,
        CART_DATABASE_URL=db.url,
        CART_REDIS_URL=redis_url,
        CART_SUMUP_BASE_URL=standin.base,
        CART_RUN_RECONCILER="false",
        CART_DEV_LOGIN="false",
        CART_SECRET_KEY=secrets.token_urlsafe(32),
        CART_INTERNAL_SECRET=secrets.token_urlsafe(32),
        CART_ENCRYPTION_KEY=secrets.token_urlsafe(32),
    )
    try:
        return run_rows(args, gen, setup, env, db, tmpdir, servers, label)
    finally:
        for server in servers:
            if server.name.startswith(f"cart-{label}-") or server.name == f"hello-{label}":
                stop_server(server)
        db.drop()


def run_rows(
    args: argparse.Namespace,
    gen: LoadGenerator,
    setup: Setup,
    env: dict[str, str],
    db: Database,
    tmpdir: Path,
    servers: list[Server],
    label: str,
) -> dict[str, Any]:
    carts = CartProcess(env, setup.workers, tmpdir, args.startup_timeout, servers, label)
    try:
        cart = carts.start()
    except ServerFailed:
        said = [line for line in tail(carts.servers[-1].log).splitlines() if "refusing" in line]
        if setup.workers > 1 and carts.servers[-1].process.returncode == 2 and said:
            print(f"  serve --workers {setup.workers} refuses: {said[-1]}")
            return {"setup": setup.name, "workers": setup.workers, "refused": said[-1]}
        raise
    port = free_port()
    hello = start_server(
        f"hello-{label}",
        uvicorn_argv(BENCH, "hello:app", port, setup.workers),
        port,
        env,
        tmpdir,
    )
    servers.append(hello)
    wait_until_answering(hello, "/", args.startup_timeout)
    notes: list[str] = []
    hellos: list[Run] = []
    cart_runs: list[Run] = []  # cart_runs[i] is bracketed by hellos[i] and hellos[i + 1]
    nobody = Database("sqlite+aiosqlite:///")  # hello has no database to watch

    def hello_run() -> None:
        spec = LoadSpec(hello.port, "/")
        run = measure(gen, ENDPOINTS["hello"], spec, hello, nobody)
        run.check = check(hello, spec)
        hellos.append(run)
        print(f"  hello-world: {rate(run):.0f} req/s")

    def cart_run(key: str, spec: LoadSpec, pre: Callable[[], dict[str, Any]] | None) -> Run:
        endpoint = ENDPOINTS[key]
        run = measure(gen, endpoint, spec, cart, db)
        run.check = pre() if pre is not None else check_post(cart, spec)
        run.answers_after = probe(cart, cookie)
        run.rss_mb = rss_mb(cart.process.pid)
        cart_runs.append(run)
        print(
            f"  {endpoint.label}: {rate(run):.0f} req/s, "
            f"{fmt(cpu_per_request(run), '.3f')} ms CPU/req (check {run.check.get('status')})"
        )
        hello_run()
        return run

    hello_run()
    with httpx.Client(base_url=cart.base, timeout=15.0) as client:
        cookie, problems = prepare_visitor(client)
    notes += [f"set-up POST /api/v1/cart/items failed: {p}" for p in problems]

    for key in ("summary", "cart_mini", "cart_page"):
        if key not in args.rows:
            continue
        cart = carts.start()
        spec = LoadSpec(cart.port, ENDPOINTS[key].path, cookie=cookie)
        cart_run(key, spec, lambda spec=spec, server=cart: check(server, spec))

    fastest = max([rate(h) for h in hellos] + [4000.0])
    expected = math.ceil(fastest * (args.warmup + args.duration) * 1.3)
    for key in ("add_json", "add_form"):
        if key not in args.rows:
            continue
        cart = carts.start()
        lines, failed = add_pool(cart.base, key, expected)
        if failed:
            notes.append(f"{key}: {failed} pool visitors could not be prepared")
        if not lines:
            notes.append(f"{key} not measured: no visitor could be prepared")
            continue
        pool = tmpdir / f"pool-{label}-{key}.tsv"
        write_pool(pool, lines)
        endpoint = ENDPOINTS[key]
        spec = LoadSpec(
            cart.port, endpoint.path, "POST", pool=pool, content_type=endpoint.content_type
        )
        before = db.quantities()
        run = cart_run(key, spec, None)
        stored = db.quantities() - before
        answers = answered(run.warmup, endpoint.ok_status) + answered(
            run.result, endpoint.ok_status
        )
        answers += 1 if run.check.get("status") == endpoint.ok_status else 0
        # wrk may drop connections whose request the service still completes: at most one
        # per connection more than it counted.
        run.db_check = {
            "answered": answers,
            "stored": stored,
            "ok": answers <= stored <= answers + args.connections,
        }
        notes.append(
            f"{endpoint.label}: {len(lines)} (visitor, product) pairs, quantity 1 each, so no "
            f"line reaches the {LINE_CAP} cap; the database gained {stored} items for "
            f"{answers} answered adds"
        )

    if "checkout" in args.rows:
        cart = carts.start()
        # One checkout per visitor (an unchanged cart checked out again gives its order
        # back): pyload stops when the pool is used up.
        wanted = max(600, min(6000, math.ceil(400 * setup.workers * (args.duration + 1.5))))
        lines, failed = checkout_pool(cart.base, wanted)
        if failed:
            notes.append(f"checkout: {failed} pool visitors could not be prepared")
        pool = tmpdir / f"pool-{label}-checkout.tsv"
        endpoint = ENDPOINTS["checkout"]
        warm, measured = lines[: len(lines) // 4], lines[len(lines) // 4 :]
        write_pool(pool, warm)
        spec = LoadSpec(cart.port, endpoint.path, "POST", pool=pool, max_requests=len(warm))
        orders_before = db.orders()
        warmed: dict[str, Any] = {}
        with suppress(RuntimeError, subprocess.SubprocessError, OSError):
            warmed = gen.run(spec, args.warmup or 1, python=True)
        write_pool(pool, measured)
        spec.max_requests = len(measured)
        saved_warmup, args.warmup = args.warmup, 0
        try:
            run = cart_run("checkout", spec, None)
        finally:
            args.warmup = saved_warmup
        made = db.orders() - orders_before
        run.warmup = warmed
        answers = answered(run.result, endpoint.ok_status)
        if warmed:
            answers += answered(warmed, endpoint.ok_status)
        # The check after the load checks out a visitor again: the same order, none new.
        run.db_check = {"answered": answers, "orders": made, "ok": made == answers}
        used_up = run.result.get("hit_max_requests")
        notes.append(
            f"checkout: each of {len(measured)} visitors holds one bakery loaf and checks out "
            f"once (an order, its SumUp checkout at the stand-in); {made} orders for "
            f"{answers} answers" + ("; the pool ran out before the time" if used_up else "")
        )
    carts.stop()

    rows = [summarise_hello(hellos, setup.workers)] + [
        summarise(run, hellos[i : i + 2], setup.workers) for i, run in enumerate(cart_runs)
    ]
    print_table(setup.name, rows)
    rates = [rate(h) for h in hellos if rate(h) > 0]
    if rates and min(rates) < 0.8 * max(rates):
        notes.append(
            f"noisy machine: hello-world ranged {min(rates):.0f}-{max(rates):.0f} req/s; each "
            "ratio uses the hello runs right before and after it, and cpu-r is steadier"
        )
    for row in rows:
        if row["verdict"] not in {"ok", "ceiling"}:
            notes.append(f"{row['label']}: {row['verdict']}")
    for note in notes:
        print(f"note: {note}")
    return {"setup": setup.name, "workers": setup.workers, "results": rows, "notes": notes}


def add_pool(base: str, key: str, expected: int) -> tuple[list[str], int]:
    """Pool lines for an add row: enough fresh visitors that no cart line reaches the cap.
    Form visitors have seen the cart page, so their form carries their CSRF token."""
    lines_needed = max(1, math.ceil(expected / (LINE_CAP - 2)))
    visitors = min(5000, max(8, math.ceil(lines_needed / len(ADD_PRODUCTS))))

    def make(client: httpx.Client) -> str | None:
        response, cookie = add_item(client, None, ADD_PRODUCTS[0], 1)
        if response.status_code >= 300 or cookie is None:
            return None
        if key == "add_json":
            return cookie
        cookie, token = visit_cart(client, cookie)
        return f"{cookie}\t{token}" if token else None

    made, failed = prepare_visitors(base, visitors, make)
    lines = []
    for product_id in ADD_PRODUCTS:
        for visitor in made:
            if key == "add_json":
                body = json.dumps({"product_id": product_id, "quantity": 1})
                lines.append(f"{visitor}\t{body}")
            else:
                cookie, token = visitor.split("\t", 1)
                body = f"csrf_token={token}&product_id={product_id}&quantity=1"
                lines.append(f"{cookie}\t{body}")
    return lines, failed


def checkout_pool(base: str, count: int) -> tuple[list[str], int]:
    def make(client: httpx.Client) -> str | None:
        response, cookie = add_item(client, None, *CHECKOUT_LINE)
        if response.status_code >= 300 or cookie is None:
            return None
        return f"{cookie}\t{{}}"

    return prepare_visitors(base, count, make)


def summarise_hello(hellos: list[Run], workers: int) -> dict[str, Any]:
    """The ceiling row: every hello-world run of this set-up, averaged."""
    row = summarise(hellos[0], hellos, workers)
    cpu = mean([cpu_per_request(h) for h in hellos])
    p50 = mean([h.result.get("p50_us", 0) / 1000 for h in hellos])
    p99 = mean([h.result.get("p99_us", 0) / 1000 for h in hellos])
    row.update(
        label="hello-world GET / (mean)",
        requests=sum(int(h.result.get("requests", 0)) for h in hellos),
        rps=row["ceiling_rps"],
        ratio=1.0 if row["ceiling_rps"] else None,
        cpu_ratio=1.0 if cpu else None,
        non_2xx=sum(errors_of(h.result)[0] for h in hellos),
        socket_errors=sum(errors_of(h.result)[1] for h in hellos),
        p50_ms=round(p50, 2) if p50 else None,
        p99_ms=round(p99, 2) if p99 else None,
        p99_over_p50=round(p99 / p50, 1) if p50 and p99 else None,
        cpu_ms_measured=round(cpu, 3) if cpu else None,
        cpu_ms_over_hello=None,
        answers_after_load=None,
        rss_mb=None,
        new_db_sessions=None,
        error="; ".join(h.error for h in hellos if h.error) or None,
        runs_rps=[round(rate(h), 1) for h in hellos],
    )
    row["verdict"] = "ceiling"
    return row


if __name__ == "__main__":
    sys.exit(main())
