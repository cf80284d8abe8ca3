"""Browser test fixtures: the standalone demo server as a separate process, Debian's
Chromium driven by Playwright (never a downloaded browser), and a screenshot folder."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT = 30.0
# Every wait in the browser gives up after this long, so a broken page fails fast.
TIMEOUT_MS = 10_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local server
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real `rose-cart demo` on a free port with its own SQLite file; stopped at the end."""
    workdir = tmp_path_factory.mktemp("e2e-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CART_PORT": str(port),
        "CART_HOST": "127.0.0.1",
        "CART_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'e2e.db'}",
        "CART_PUBLIC_URL": url,
        "PYTHONUNBUFFERED": "1",
    }
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rose_cart.cli", "demo"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while not _answers_200(url + "/"):
                if process.poll() is not None or time.monotonic() > deadline:
                    why = (
                        f"exited with code {process.returncode}"
                        if process.returncode is not None
                        else f"did not answer GET / with 200 within {SERVER_START_TIMEOUT:.0f} s"
                    )
                    pytest.fail(
                        f"rose-cart demo {why}; its output:\n{log_path.read_text(errors='replace')}"
                    )
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message + "; CI must run the browser tests")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where screenshots go: $E2E_OUTPUT_DIR, else test-output/e2e/ at the repository root."""
    configured = os.environ.get("E2E_OUTPUT_DIR")
    path = Path(configured) if configured else REPO_ROOT / "test-output" / "e2e"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Shots:
    """Numbered full-page screenshots of one walk: `01-shop-front.png`, `02-...`."""

    page: Page
    directory: Path
    prefix: str = ""
    taken: list[Path] = field(default_factory=list)

    def __call__(self, name: str, *, full_page: bool = True) -> Path:
        if not self.taken:
            # The previous run's pictures of this walk would only confuse the reader.
            for stale in self.directory.glob(f"{self.prefix}[0-9][0-9]-*.png"):
                stale.unlink()
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.directory / f"{self.prefix}{len(self.taken) + 1:02d}-{slug}.png"
        # A window-sized picture shows what is on the screen without scrolling.
        self.page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    chromium_path: Path,
    server_url: str,
    output_dir: Path,
    tmp_path: Path,
) -> Iterator[Page]:
    """A page in a fresh Chromium profile, its base URL set to the server under test.

    If the test fails, the page as the shopper last saw it is saved as `NN-failed.png`.
    """
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium_path),
            headless=True,
            args=CHROMIUM_ARGS,
            base_url=server_url,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
            if request.node.stash.get(_FAILED, False):
                shots = request.node.stash.get(_SHOTS, None)
                if shots is not None:
                    try:
                        shots("failed")
                    except Exception as exc:  # the failure itself is what matters
                        print(f"could not save the failure screenshot: {exc}")
        finally:
            context.close()


_SHOTS = pytest.StashKey[Shots]()


@pytest.fixture
def shots(request: pytest.FixtureRequest, page: Page, output_dir: Path) -> Shots:
    """`shots("shop front")` saves the next numbered screenshot of the page; a test may set
    `shots.prefix` to keep its files apart from the main walk's."""
    taken = Shots(page=page, directory=output_dir)
    request.node.stash[_SHOTS] = taken
    return taken
