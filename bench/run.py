"""Cart service throughput, as ratios against a Quart hello-world in the same run (DESIGN §12).

    make bench                      # or: .venv/bin/python bench/run.py [--duration 5]

Starts two servers on 127.0.0.1 (the hello app and ``rose_cart.cli serve``, each one uvicorn
worker), loads them from a second process (``wrk``, or ``bench/pyload.py`` when wrk is
missing), prints a table and writes ``bench/results/latest.json``. Every load run is bounded
in time (and, for pyload, in request count); every server is stopped at the end.
Exit status: 0, unless a server failed to start (1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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
# Products the add-to-cart run adds one at a time: the demo products with no own limit,
# so a line can grow to the hard cap of 99 (HARD_MAX_PER_LINE) before the service says no.
ADD_PRODUCTS: tuple[int, ...] = (4, 7, 9, 11, 13)
LINE_CAP = 99


class ServerFailed(RuntimeError):
    """A server did not start or did not answer."""


@dataclass
class Endpoint:
    key: str
    label: str
    method: str
    path: str
    budget: str
    kind: str  # ceiling | hot (>= 0.5 of ceiling) | page | write


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
    cpu_seconds: float | None = None
    error: str | None = None
    check: dict[str, Any] = field(default_factory=dict)
    answers_after: bool | None = None  # did the server still answer a DB read afterwards?


ENDPOINTS = {
    "hello": Endpoint("hello", "hello-world GET /", "GET", "/", "ceiling", "ceiling"),
    "summary": Endpoint(
        "summary",
        "GET /internal/cart/summary",
        "GET",
        "/internal/cart/summary",
        "most of ceiling (flag < 0.5)",
        "hot",
    ),
    "cart_mini": Endpoint(
        "cart_mini",
        "GET /internal/fragments/cart-mini",
        "GET",
        "/internal/fragments/cart-mini",
        "most of ceiling (flag < 0.5)",
        "hot",
    ),
    "cart_page": Endpoint(
        "cart_page",
        "GET /cart/",
        "GET",
        "/cart/",
        "fixed queries; ref. oscar ~16 ms CPU/req",
        "page",
    ),
    "add": Endpoint(
        "add",
        "POST /api/v1/cart/items",
        "POST",
        "/api/v1/cart/items",
        "well under 1 ms CPU/req",
        "write",
    ),
}


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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (all its threads) and of its direct children."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int) -> tuple[int, float] | None:
        try:
            raw = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            return None
        fields = raw[raw.rindex(")") + 2 :].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick

    own = stat(pid)
    if own is None:
        return None
    total = own[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pid:
            child = stat(int(entry.name))
            if child is not None and child[0] == pid:
                total += child[1]
    return total


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


class LoadGenerator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        wanted = args.loadgen
        self.wrk = shutil.which("wrk") if wanted in {"auto", "wrk"} else None
        if wanted == "wrk" and not self.wrk:
            print("wrk is not installed; falling back to bench/pyload.py", file=sys.stderr)
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

    def run(self, spec: LoadSpec, seconds: int, graceful: bool = False) -> dict[str, Any]:
        """One bounded load run. ``graceful``: use pyload, whose connections finish their
        request in flight before closing (wrk drops them, and the service then cancels
        those requests mid-flight)."""
        if self.wrk and not graceful:
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
                str(self.args.max_requests),
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
                f"{argv[0] if graceful else self.name} failed ({completed.returncode}): "
                f"{completed.stderr.strip()[-500:] or completed.stdout.strip()[-500:]}"
            )
        result: dict[str, Any] = json.loads(match.group(1))
        return result


def measure(
    gen: LoadGenerator, endpoint: Endpoint, spec: LoadSpec, server: Server, warmup: int
) -> Run:
    run = Run(endpoint)
    try:
        if warmup > 0:
            gen.run(spec, warmup, graceful=True)
        before = cpu_seconds(server.process.pid)
        run.result = gen.run(spec, gen.args.duration)
        after = cpu_seconds(server.process.pid)
        if before is not None and after is not None:
            run.cpu_seconds = after - before
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        run.error = str(exc)
    if server.process.poll() is not None:
        run.error = (run.error or "") + f" server exited: {tail(server.log, 10)}"
    return run


# --------------------------------------------------------------------------- cart set-up


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


def describe_response(response: httpx.Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "content_type": response.headers.get("content-type", ""),
        "bytes": len(response.content),
        "body_start": response.text[:300],
    }


def prepare_visitor(client: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    """A visitor with five lines in three marketplaces; their session cookie."""
    cookie: str | None = None
    problems: list[dict[str, Any]] = []
    for product_id, quantity in CART_CONTENTS:
        response, cookie = add_item(client, cookie, product_id, quantity)
        if response.status_code >= 300:
            problems.append({"product_id": product_id, **describe_response(response)})
    if cookie is None:
        raise ServerFailed(f"adding to the cart gave no {COOKIE_NAME} cookie: {problems}")
    return cookie, problems


def prepare_pool(
    client: httpx.Client, expected_requests: int, path: Path
) -> tuple[int, int, list[dict[str, Any]]]:
    """Enough fresh visitors that no cart line reaches the 99 cap during the add run.

    Each pool line is one (visitor, product) pair; the load generator cycles through them,
    so each line is added to about ``expected_requests / lines`` times."""
    per_line = LINE_CAP - 2
    lines_needed = max(1, math.ceil(expected_requests / per_line))
    visitors = min(5000, max(8, math.ceil(lines_needed / len(ADD_PRODUCTS))))
    cookies: list[str] = []
    problems: list[dict[str, Any]] = []
    for _ in range(visitors):
        response, cookie = add_item(client, None, ADD_PRODUCTS[0], 1)
        if response.status_code >= 300 or cookie is None:
            problems.append(describe_response(response))
            if len(problems) >= 3:
                break
            continue
        cookies.append(cookie)
    with path.open("w", encoding="utf-8") as handle:
        for product_id in ADD_PRODUCTS:
            body = json.dumps({"product_id": product_id, "quantity": 1})
            for cookie in cookies:
                handle.write(f"{cookie}\t{body}\n")
    return len(cookies), len(cookies) * len(ADD_PRODUCTS), problems


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


def summarise(run: Run, brackets: list[Run]) -> dict[str, Any]:
    """One table row; the ceiling is the mean of the hello runs just before and after."""
    r = run.result
    rps = rate(run)
    ceiling = mean([rate(h) for h in brackets])
    hello_cpu = mean([cpu_per_request(h) for h in brackets])
    cpu = cpu_per_request(run)
    socket_errors = sum(
        int(r.get(k, 0)) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    row: dict[str, Any] = {
        "endpoint": run.endpoint.key,
        "label": run.endpoint.label,
        "requests": int(r.get("requests", 0)),
        "rps": round(rps, 1),
        "ceiling_rps": round(ceiling, 1) if ceiling else None,
        "ratio": round(rps / ceiling, 3) if ceiling and rps else None,
        # Same comparison by server CPU per request: what the ratio would be if both were
        # CPU-bound on an otherwise idle core; much less disturbed by neighbours' load.
        "cpu_ratio": round(hello_cpu / cpu, 3) if hello_cpu and cpu else None,
        "p50_ms": round(r["p50_us"] / 1000, 2) if "p50_us" in r else None,
        "p99_ms": round(r["p99_us"] / 1000, 2) if "p99_us" in r else None,
        "non_2xx": int(r.get("status_errors", 0)),
        "socket_errors": socket_errors,
        "status_counts": r.get("status_counts"),
        # One saturated worker: wall time per request ~ its CPU time per request.
        "cpu_ms_est": round(1000 / rps, 3) if rps else None,
        "cpu_ms_measured": round(cpu, 3) if cpu is not None else None,
        "cpu_ms_over_hello": round(cpu - hello_cpu, 3) if cpu and hello_cpu else None,
        "budget": run.endpoint.budget,
        "check": run.check,
        "answers_after_load": run.answers_after,
        "error": run.error,
    }
    row["verdict"] = verdict(run.endpoint, row)
    return row


def verdict(endpoint: Endpoint, row: dict[str, Any]) -> str:
    status = row["check"].get("status") if row["check"] else None
    if row["error"]:
        return "FAILED"
    if row["non_2xx"] or row["socket_errors"] or (status is not None and status >= 300):
        return "ERRORS"
    if endpoint.kind == "hot" and row["ratio"] is not None and row["ratio"] < 0.5:
        return "BELOW"
    cpu = row["cpu_ms_measured"] if row["cpu_ms_measured"] is not None else row["cpu_ms_est"]
    if endpoint.kind == "write" and cpu is not None and cpu >= 1.0:
        return "OVER"
    return "ok"


def fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'endpoint':<34} {'req/s':>7} {'hello':>7} {'ratio':>6} {'cpu-r':>6} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'cpu/req':>8} {'1/rps':>7} {'errs':>5} {'after':>5} {'verdict':>7}  "
        "budget (§12)"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['label']:<34} {fmt(row['rps'], '.0f'):>7} {fmt(row['ceiling_rps'], '.0f'):>7} "
            f"{fmt(row['ratio'], '.2f'):>6} {fmt(row['cpu_ratio'], '.2f'):>6} "
            f"{fmt(row['p50_ms'], '.1f'):>7} {fmt(row['p99_ms'], '.1f'):>7} "
            f"{fmt(row['cpu_ms_measured'], '.3f'):>8} {fmt(row['cpu_ms_est'], '.3f'):>7} "
            f"{row['non_2xx'] + row['socket_errors']:>5} {after(row):>5} {row['verdict']:>7}  "
            f"{row['budget']}"
        )
    print(
        "hello: mean req/s of the hello-world runs just before and after; ratio = req/s / hello;"
        "\ncpu-r: hello's server CPU per request / this one's; cpu/req: server CPU ms per"
        "\nrequest (from /proc); 1/rps: ms per request for one saturated worker; errs: non-2xx"
        "\nplus socket errors; after: did the service still answer GET /cart/ once the load"
        "\nended (HUNG: it did not)."
    )


def after(row: dict[str, Any]) -> str:
    value = row.get("answers_after_load")
    return "-" if value is None else ("ok" if value else "HUNG")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--max-requests", type=int, default=500_000, help="pyload: cap per run")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--database-url",
        default="",
        help="the cart's database (default: a fresh SQLite file); e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/rose_cart_bench (must exist)",
    )
    parser.add_argument("--redis-url", default="", help="use Redis as the cache (CART_REDIS_URL)")
    args = parser.parse_args(argv)
    args.duration = max(1, args.duration)
    args.warmup = max(0, args.warmup)
    args.connections = max(1, args.connections)
    args.threads = max(1, min(args.threads, args.connections))
    return args


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("uvicorn", "quart", "uvloop", "httptools", "sqlalchemy", "aiosqlite"):
        with suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


@dataclass
class CartProcess:
    """The cart service as production runs it standalone; restarted (same database, same
    secrets) before each endpoint, so one endpoint's aftermath cannot spoil the next."""

    env: dict[str, str]
    logdir: Path
    timeout: float
    servers: list[Server]
    starts: int = 0

    def start(self) -> Server:
        for server in self.servers:
            if server.name.startswith("cart"):
                stop_server(server)
        port = free_port()
        self.starts += 1
        server = start_server(
            f"cart-{self.starts}",
            [sys.executable, "-m", "rose_cart.cli", "serve"],
            port,
            dict(self.env, CART_PORT=str(port)),
            self.logdir,
        )
        self.servers.append(server)
        wait_until_answering(server, "/internal/cart/summary", self.timeout)
        return server


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gen = LoadGenerator(args)
    started_at = datetime.now(UTC)
    print(
        f"rose_cart bench: {gen.name}, {args.connections} connections, "
        f"{args.warmup}+{args.duration} s per endpoint, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="rose-bench-") as tmp:
        tmpdir = Path(tmp)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("CART_")}
        base_env["PYTHONDONTWRITEBYTECODE"] = "1"
        servers: list[Server] = []
        try:
            with servers_stopped(servers):
                try:
                    hello_port = free_port()
                    hello = start_server(
                        "hello",
                        [
                            sys.executable,
                            "-m",
                            "uvicorn",
                            "--app-dir",
                            str(BENCH),
                            "hello:app",
                            "--host",
                            HOST,
                            "--port",
                            str(hello_port),
                            "--workers",
                            "1",
                            "--no-access-log",
                            "--log-level",
                            "warning",
                        ],
                        hello_port,
                        base_env,
                        tmpdir,
                    )
                    servers.append(hello)
                    wait_until_answering(hello, "/", args.startup_timeout)
                    cart_env = dict(base_env)
                    cart_env.update(
                        CART_MODE="standalone",
                        CART_ENV="development",
                        CART_HOST=HOST,
                        CART_DATABASE_URL=args.database_url
                        or f"sqlite+aiosqlite:///{tmpdir / 'bench.db'}",
                        CART_REDIS_URL=args.redis_url,
                        CART_RUN_RECONCILER="false",
                        CART_DEV_LOGIN="false",
                        CART_SECRET_KEY=secrets.token_urlsafe(32),
                        CART_INTERNAL_SECRET=secrets.token_urlsafe(32),
                        CART_ENCRYPTION_KEY=secrets.token_urlsafe(32),
                    )
                    carts = CartProcess(cart_env, tmpdir, args.startup_timeout, servers)
                    carts.start()
                except (ServerFailed, OSError) as exc:
                    print(f"server failed to start: {exc}", file=sys.stderr)
                    return 1
                return bench(args, gen, hello, carts, started_at)
        finally:
            logs = RESULTS / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            for stale in logs.glob("*.log"):
                stale.unlink()
            for server in servers:
                with suppress(OSError):
                    shutil.copyfile(server.log, logs / server.log.name)


def check(server: Server, spec: LoadSpec) -> dict[str, Any]:
    """One request outside the load, to see status and body."""
    headers = {"Cookie": spec.cookie} if spec.cookie else {}
    try:
        with httpx.Client(base_url=server.base, timeout=15.0) as client:
            return describe_response(client.get(spec.path, headers=headers))
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


def bench(
    args: argparse.Namespace,
    gen: LoadGenerator,
    hello: Server,
    carts: CartProcess,
    started_at: datetime,
) -> int:
    notes: list[str] = []
    hello_spec = LoadSpec(hello.port, "/")
    hellos: list[Run] = []
    cart_runs: list[Run] = []  # cart_runs[i] is bracketed by hellos[i] and hellos[i + 1]
    cart = carts.servers[-1]

    def hello_run() -> None:
        run = measure(gen, ENDPOINTS["hello"], hello_spec, hello, args.warmup)
        run.check = check(hello, hello_spec)
        hellos.append(run)
        print(f"  hello-world: {rate(run):.0f} req/s")

    def cart_run(endpoint: Endpoint, spec: LoadSpec, server: Server, pre: dict[str, Any]) -> None:
        run = measure(gen, endpoint, spec, server, args.warmup)
        run.check = pre
        run.answers_after = probe(server, cookie)
        cart_runs.append(run)
        alive = "answers" if run.answers_after else "NO LONGER ANSWERS /cart/"
        print(
            f"  {endpoint.label}: {rate(run):.0f} req/s "
            f"(check {run.check.get('status')}; afterwards the server {alive})"
        )
        hello_run()

    hello_run()
    cookie: str | None = None
    try:
        with httpx.Client(base_url=cart.base, timeout=15.0) as client:
            cookie, problems = prepare_visitor(client)
        for problem in problems:
            notes.append(f"set-up POST /api/v1/cart/items failed: {problem}")
    except (ServerFailed, httpx.HTTPError) as exc:
        notes.append(f"GET endpoints not measured: preparing the visitor failed: {exc!r}")

    try:
        if cookie:
            for key in ("summary", "cart_mini", "cart_page"):
                endpoint = ENDPOINTS[key]
                cart = carts.start()
                spec = LoadSpec(cart.port, endpoint.path, cookie=cookie)
                cart_run(endpoint, spec, cart, check(cart, spec))

        # Each add goes to the next (visitor, product) pair of a pool big enough that no
        # line reaches the 99 cap even if adds ran at (a generous) hello-world speed.
        add = ENDPOINTS["add"]
        fastest = max([rate(h) for h in hellos] + [4000.0])
        expected = math.ceil(fastest * (args.warmup + args.duration) * 1.3)
        handle, name = tempfile.mkstemp(prefix="rose-bench-pool-", suffix=".tsv")
        os.close(handle)
        pool_file = Path(name)
        try:
            cart = carts.start()
            visitors, lines, problems = 0, 0, []
            try:
                with httpx.Client(base_url=cart.base, timeout=15.0) as client:
                    visitors, lines, problems = prepare_pool(client, expected, pool_file)
            except httpx.HTTPError as exc:
                problems = [{"error": repr(exc)}]
            for problem in problems:
                notes.append(f"pool set-up POST /api/v1/cart/items failed: {problem}")
            if lines:
                notes.append(
                    f"add-to-cart cycles through {lines} (visitor, product) pairs from "
                    f"{visitors} prepared anonymous carts, quantity 1 each, so no line "
                    f"reaches the {LINE_CAP} cap; each response carries the whole cart."
                )
                spec = LoadSpec(cart.port, add.path, method="POST", pool=pool_file)
                cart_run(add, spec, cart, check_post(cart, spec))
            else:
                notes.append("add-to-cart not measured: no visitor could be prepared")
        finally:
            pool_file.unlink(missing_ok=True)
    except ServerFailed as exc:
        print(f"the cart service failed to restart: {exc}", file=sys.stderr)
        return 1

    wedged = [run.endpoint.label for run in cart_runs if run.answers_after is False]
    if wedged:
        notes.append(
            "after the load of " + ", ".join(wedged) + " ended, the cart service stopped "
            "answering pages that read the database (GET /cart/ timed out): the load "
            "generator closed connections with requests in flight, the service cancelled "
            "them, and the SQLite unit-of-work lock was never released (see "
            "bench/results/logs/). The bench restarts the service before each endpoint."
        )

    rates = [rate(h) for h in hellos if rate(h) > 0]
    if rates and min(rates) < 0.8 * max(rates):
        notes.append(
            f"noisy machine: hello-world ranged {min(rates):.0f}-{max(rates):.0f} req/s during "
            "the run; each ratio uses the hello runs right before and after it, and cpu-r is "
            "the steadier figure"
        )

    ceiling_row = summarise_hello(hellos)
    rows = [ceiling_row] + [summarise(run, hellos[i : i + 2]) for i, run in enumerate(cart_runs)]
    print()
    print_table(rows)
    flagged = [row for row in rows if row["verdict"] != "ok"]
    for row in flagged:
        detail = row["error"] or (
            f"non-2xx={row['non_2xx']} socket errors={row['socket_errors']} "
            f"status counts={row['status_counts']} check={row['check']}"
        )
        notes.append(f"{row['label']}: {row['verdict']} ({detail})")
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")

    report = {
        "date": started_at.isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_end": os.getloadavg(),
        },
        "versions": versions(),
        "loadgen": gen.describe(),
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
        "hello_runs_rps": [round(rate(h), 1) for h in hellos],
        "results": rows,
        "flagged": [row["endpoint"] for row in flagged],
        "notes": notes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nwrote {shown}")
    return 0


def check_post(server: Server, spec: LoadSpec) -> dict[str, Any]:
    """One more add from the pool's first line, after the load, to see status and body."""
    if spec.pool is None or not spec.pool.exists():
        return {}
    first = spec.pool.read_text(encoding="utf-8").splitlines()[:1]
    if not first:
        return {}
    cookie, body = first[0].split("\t", 1)
    headers = {"Cookie": cookie, "Content-Type": "application/json"}
    try:
        with httpx.Client(base_url=server.base, timeout=15.0) as client:
            return describe_response(client.post(spec.path, content=body, headers=headers))
    except httpx.HTTPError as exc:
        return {"status": None, "error": repr(exc)}


def summarise_hello(hellos: list[Run]) -> dict[str, Any]:
    """The ceiling row: every hello-world run of this run, averaged."""
    row = summarise(hellos[0], hellos)
    cpu = mean([cpu_per_request(h) for h in hellos])
    p50 = mean([h.result.get("p50_us", 0) / 1000 for h in hellos])
    p99 = mean([h.result.get("p99_us", 0) / 1000 for h in hellos])
    row.update(
        label="hello-world GET / (mean)",
        requests=sum(int(h.result.get("requests", 0)) for h in hellos),
        rps=row["ceiling_rps"],
        ratio=1.0 if row["ceiling_rps"] else None,
        cpu_ratio=1.0 if cpu else None,
        non_2xx=sum(int(h.result.get("status_errors", 0)) for h in hellos),
        socket_errors=sum(summarise(h, [])["socket_errors"] for h in hellos),
        p50_ms=round(p50, 2) if p50 else None,
        p99_ms=round(p99, 2) if p99 else None,
        cpu_ms_est=round(1000 / row["ceiling_rps"], 3) if row["ceiling_rps"] else None,
        cpu_ms_measured=round(cpu, 3) if cpu else None,
        cpu_ms_over_hello=None,
        answers_after_load=None,
        error="; ".join(h.error for h in hellos if h.error) or None,
        runs_rps=[round(rate(h), 1) for h in hellos],
    )
    row["verdict"] = verdict(ENDPOINTS["hello"], row)
    return row


if __name__ == "__main__":
    sys.exit(main())
