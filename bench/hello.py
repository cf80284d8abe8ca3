"""The ceiling: the smallest Quart app, served by the same server as the cart service.

Run by ``bench/run.py`` as ``uvicorn --app-dir bench hello:app``; every cart number is
reported as a ratio against this one, measured in the same run on the same machine.
"""

from __future__ import annotations

from quart import Quart

app = Quart(__name__)


@app.get("/")
async def hello() -> str:
    return "hello"
