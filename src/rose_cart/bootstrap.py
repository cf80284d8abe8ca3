"""The one wiring point: settings in, a ready set of services out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rose_cart.adapters.cache import InMemoryCache, RedisCache
from rose_cart.adapters.clock import SystemClock
from rose_cart.adapters.crypto import SecretBox
from rose_cart.adapters.db.engine import make_engine, open_pool
from rose_cart.adapters.db.uow import SqlUnitOfWorkFactory
from rose_cart.adapters.payments.sumup import SumUpProvider
from rose_cart.config import ConfigError, Settings
from rose_cart.ports import (
    BlogService,
    Cache,
    CalendarService,
    Clock,
    MarketService,
    PaymentProvider,
    Subscriber,
    UnitOfWorkFactory,
)
from rose_cart.services.admin import AdminService
from rose_cart.services.cart import CartService
from rose_cart.services.catalog import Catalog
from rose_cart.services.checkout import CheckoutService
from rose_cart.services.container import Services
from rose_cart.services.logins import LoginSessions
from rose_cart.services.orders import OrderService
from rose_cart.services.page_config import PageConfigService, SiteAccount
from rose_cart.services.payments import PaymentService
from rose_cart.services.relay import OutboxRelay


@dataclass
class Overrides:
    """Adapters a test (or the standalone runner) supplies instead of the configured ones."""

    market: MarketService | None = None
    blog: BlogService | None = None
    calendar: CalendarService | None = None
    cache: Cache | None = None
    clock: Clock | None = None
    payments: PaymentProvider | None = None
    subscriber: Subscriber | None = None
    #: Wraps the unit of work (tests use it to catch remote calls made inside a transaction).
    wrap_uow: Callable[[UnitOfWorkFactory], UnitOfWorkFactory] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def migrate(settings: Settings) -> None:
    """Upgrade the cart's schema and, in standalone mode, the events sibling's (its own
    tables and version table in the same database). Synchronous: call it from a thread
    when an event loop is running."""
    from rose_cart.adapters.db.migrate import upgrade

    upgrade(settings.database_url)
    if settings.standalone:
        from rose_cart.standalone.events.migrate import upgrade as upgrade_events

        upgrade_events(settings.database_url)


def build_services(settings: Settings, overrides: Overrides | None = None) -> Services:
    settings.check()
    o = overrides or Overrides()
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    # Half the pool is kept for single statements (adds, cart reads), half for transactions.
    sql_uow = SqlUnitOfWorkFactory(engine, hot_connections=settings.db_pool_size // 2)
    uow: UnitOfWorkFactory = sql_uow
    if o.wrap_uow is not None:
        uow = o.wrap_uow(uow)
    clock = o.clock or SystemClock()
    closers: list[Callable[[], Awaitable[None]]] = []
    starters: list[Callable[[], Awaitable[None]]] = [lambda: open_pool(engine)]

    cache: Cache
    if o.cache is not None:
        cache = o.cache
    elif settings.redis_url:
        redis_cache = RedisCache(settings.redis_url)
        cache = redis_cache
        closers.append(redis_cache.aclose)
    else:
        cache = InMemoryCache()

    extras: dict[str, Any] = dict(o.extras)
    market, blog, calendar, subscriber = o.market, o.blog, o.calendar, o.subscriber
    if settings.standalone:
        from rose_cart.standalone.siblings import (
            ReferenceBlog,
            ReferenceCalendar,
            ReferenceMarket,
            ReferenceSubscriber,
        )

        market = market or ReferenceMarket()
        blog = blog or ReferenceBlog()
        if calendar is None:
            # The events sibling stands for a separate service: an engine of its own, its
            # own tables in the same database.
            events = ReferenceCalendar.for_url(settings.database_url, clock)
            closers.append(events.aclose)
            starters.append(events.open)
            calendar = events
        if isinstance(calendar, ReferenceCalendar):
            # Its pages and JSON API are mounted with it.
            extras.setdefault("events", calendar)
        subscriber = subscriber or ReferenceSubscriber()
    if market is None or blog is None or calendar is None or subscriber is None:
        raise ConfigError(
            "split mode needs HTTP clients of the market, blog and events services, "
            "which this version does not have yet"
        )
    extras.setdefault("market", market)
    extras.setdefault("blog", blog)
    extras.setdefault("calendar", calendar)
    extras.setdefault("subscriber", subscriber)

    catalog = Catalog(market, blog, cache, settings.product_cache_seconds)
    cart = CartService(uow, catalog, calendar, cache, clock, settings.summary_cache_seconds)

    provider: PaymentProvider
    if o.payments is not None:
        provider = o.payments
    else:
        sumup = SumUpProvider(settings.payments_base_url, settings.sumup_timeout_seconds)
        closers.append(sumup.aclose)
        provider = sumup
    site = SiteAccount(
        settings.sumup_merchant_code, settings.sumup_api_key, settings.sumup_checkout_prefix
    )
    page_configs = PageConfigService(uow, SecretBox(*settings.encryption_secrets), site, clock)
    # Set whenever a transaction wrote to the outbox: the relay wakes up at once.
    outbox_written = asyncio.Event()
    payments = PaymentService(
        uow,
        provider,
        page_configs,
        calendar,
        cart,
        clock,
        settings.base_url,
        valid_for=timedelta(minutes=settings.checkout_valid_minutes),
        on_outbox=outbox_written.set,
    )
    checkout = CheckoutService(uow, cart, catalog, calendar, payments, clock)
    orders = OrderService(uow, payments, calendar)
    relay = OutboxRelay(uow, payments.run_command, subscriber, clock)
    admin = AdminService(uow, orders, payments, relay, settings.admins)
    extras.setdefault("provider", provider)
    closers.append(engine.dispose)
    closers.append(sql_uow.aclose)  # closers run last first: these before the engine goes
    return Services(
        cart=cart,
        catalog=catalog,
        checkout=checkout,
        payments=payments,
        orders=orders,
        page_configs=page_configs,
        relay=relay,
        admin=admin,
        logins=LoginSessions(cache),
        outbox_written=outbox_written,
        clock=clock,
        internal_secret=settings.internal_secret,
        dev_login=settings.dev_login,
        base_url=settings.base_url,
        extras=extras,
        closers=closers,
        starters=starters,
    )
