"""A loopback SumUp stand-in for the checkout row: the built-in sandbox in its own process.

The sandbox keeps its checkouts in memory, so mounted inside the cart service it cannot
serve more than one worker; here it runs apart, and every cart worker reaches it over
HTTP as it would reach SumUp. Run by ``bench/run.py`` as
``uvicorn --app-dir bench sumup_standin:app``; point ``CART_SUMUP_BASE_URL`` at its root.
"""

from __future__ import annotations

from quart import Quart

from rose_cart.standalone.sumup_sandbox import SandboxState, sandbox_blueprint

app = Quart(__name__)
app.register_blueprint(sandbox_blueprint(SandboxState()))
