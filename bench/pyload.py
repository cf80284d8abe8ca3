"""Fallback load generator for when ``wrk`` is not installed: a separate process that keeps N
HTTP/1.1 keep-alive connections busy for a fixed time and at most a fixed number of requests.

It speaks just enough HTTP/1.1 (Content-Length and chunked bodies) to measure our own
servers on 127.0.0.1, and prints one line, ``BENCHJSON {...}``, with the same keys as
``bench/wrk.lua`` plus exact status counts. Being Python, it saturates sooner than wrk, so its
ceiling is lower; the ratios stay comparable within one run, not across load generators.

    python bench/pyload.py --port 8000 --path / --connections 32 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

HOST = "127.0.0.1"  # the only address we ever load


@dataclass
class State:
    deadline: float
    max_requests: int
    requests: list[bytes]
    issued: int = 0
    completed: int = 0
    bytes_read: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    connect_errors: int = 0
    read_errors: int = 0
    timeouts: int = 0
    latencies: list[float] = field(default_factory=list)


def build_request(
    method: str,
    path: str,
    port: int,
    cookie: str | None,
    body: str | None,
    content_type: str = "application/json",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "User-Agent: rose-bench"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    payload = body.encode() if body is not None else b""
    if body is not None:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """One response: (status, bytes read, whether the server will close the connection)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split(b" ", 2)[1])
    size = len(status_line)
    length: int | None = None
    chunked = False
    close = False
    while True:
        line = await reader.readline()
        size += len(line)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and b"close" in value.lower():
            close = True
    if chunked:
        while True:
            size_line = await reader.readline()
            chunk = int(size_line.split(b";")[0].strip() or b"0", 16)
            data = await reader.readexactly(chunk + 2)
            size += len(size_line) + len(data)
            if chunk == 0:
                break
    elif length:
        size += len(await reader.readexactly(length))
    return status, size, close


async def connection(state: State, port: int, index: int, request_timeout: float) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < state.deadline and state.issued < state.max_requests:
        if writer is None or reader is None:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, port), request_timeout
                )
            except (OSError, TimeoutError):
                state.connect_errors += 1
                await asyncio.sleep(0.05)
                continue
        # One order for all connections: each pool line is sent once before any again.
        request = state.requests[state.issued % len(state.requests)]
        state.issued += 1
        started = time.perf_counter()
        try:
            writer.write(request)
            status, size, close = await asyncio.wait_for(read_response(reader), request_timeout)
        except TimeoutError:
            state.timeouts += 1
            close = True
        except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError):
            state.read_errors += 1
            close = True
        else:
            state.latencies.append(time.perf_counter() - started)
            state.completed += 1
            state.bytes_read += size
            state.statuses[status] += 1
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def build_requests(args: argparse.Namespace) -> list[bytes]:
    kind = args.content_type
    if not args.pool:
        return [build_request(args.method, args.path, args.port, args.cookie, args.body, kind)]
    with open(args.pool, encoding="utf-8") as handle:
        pairs = [line.rstrip("\n").split("\t", 1) for line in handle if "\t" in line]
    return [build_request(args.method, args.path, args.port, c, b, kind) for c, b in pairs]


async def run(args: argparse.Namespace, requests: list[bytes]) -> dict[str, object]:
    started = time.monotonic()
    state = State(
        deadline=started + args.duration, max_requests=args.max_requests, requests=requests
    )
    tasks = [
        asyncio.create_task(connection(state, args.port, i, args.timeout))
        for i in range(args.connections)
    ]
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    lat = sorted(state.latencies)
    # Errors: what wrk counts as one too (status 400 and above); a redirect is an answer.
    non_2xx = sum(n for status, n in state.statuses.items() if status >= 400)
    return {
        "requests": state.completed,
        "duration_us": int(elapsed * 1e6),
        "bytes": state.bytes_read,
        "connect_errors": state.connect_errors,
        "read_errors": state.read_errors,
        "write_errors": 0,
        "timeouts": state.timeouts,
        "status_errors": non_2xx,
        "status_counts": {str(k): v for k, v in sorted(state.statuses.items())},
        "p50_us": int(percentile(lat, 0.50) * 1e6),
        "p90_us": int(percentile(lat, 0.90) * 1e6),
        "p99_us": int(percentile(lat, 0.99) * 1e6),
        "max_us": int((lat[-1] if lat else 0.0) * 1e6),
        "mean_us": round(sum(lat) / len(lat) * 1e6, 1) if lat else 0.0,
        "hit_max_requests": state.issued >= state.max_requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--cookie", default=None)
    parser.add_argument("--body", default=None, help="JSON body (sent as application/json)")
    parser.add_argument("--pool", default=None, help='file of "cookie<TAB>body" lines')
    parser.add_argument("--content-type", default="application/json", help="of the bodies")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=500_000)
    parser.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    args = parser.parse_args(argv)
    requests = build_requests(args)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args, requests))
    else:
        result = uvloop.run(run(args, requests))
    sys.stdout.write("BENCHJSON " + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
