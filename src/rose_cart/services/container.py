"""The use cases a running app offers, handed to the web layer as one object."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rose_cart.ports import Clock
from rose_cart.services.admin import AdminService
from rose_cart.services.cart import CartService
from rose_cart.services.catalog import Catalog
from rose_cart.services.checkout import CheckoutService
from rose_cart.services.logins import LoginSessions
from rose_cart.services.orders import OrderService
from rose_cart.services.page_config import PageConfigService
from rose_cart.services.payments import PaymentService
from rose_cart.services.relay import OutboxRelay


@dataclass
class Services:
    cart: CartService
    catalog: Catalog
    checkout: CheckoutService
    payments: PaymentService
    orders: OrderService
    page_configs: PageConfigService
    relay: OutboxRelay
    admin: AdminService
    logins: LoginSessions
    #: Set when something was written to the outbox, so the relay need not wait.
    outbox_written: asyncio.Event
    clock: Clock
    internal_secret: str
    dev_login: bool
    base_url: str
    extras: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Run once before serving (opening the database pool, for one).
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        for start in self.starters:
            await start()

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()
