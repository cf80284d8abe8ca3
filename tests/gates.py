"""Fakes that hold a call half-way until the test lets it go, to interleave requests."""

from __future__ import annotations

import asyncio

from rose_cart.domain.identity import CartIdentity
from rose_cart.ports import CalendarEntry
from tests.fakes import FakeCalendar


class GatedCalendar(FakeCalendar):
    """``pending_entries`` signals ``reached`` and then waits for ``gate``: a summary read
    held after it has read the cart's lines and before it stores what it found."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()

    async def pending_entries(self, identity: CartIdentity) -> list[CalendarEntry]:
        self.reached.set()
        await self.gate.wait()
        return await super().pending_entries(identity)
