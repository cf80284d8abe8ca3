"""Background work: the reconciler (asks SumUp about unpaid orders, expires stale ones) and
the outbox relay (runs commands, delivers activities).

Both run as ``rose-cart worker`` (any number of copies, on any host) and as background
tasks inside the standalone server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from rose_cart.config import Settings
from rose_cart.services.container import Services

log = logging.getLogger(__name__)


async def reconcile_forever(services: Services, interval_seconds: float) -> None:
    """Reconcile every ``interval_seconds`` until cancelled; errors never stop the loop."""
    every = timedelta(seconds=max(interval_seconds, 1.0))
    while True:
        try:
            report = await services.payments.reconcile(every=every)
            if report.checked:
                log.info(
                    "reconciled %s orders: %s paid, %s expired, %s errors",
                    report.checked,
                    report.paid,
                    report.expired,
                    report.errors,
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bad pass must not end the worker
            log.exception("reconcile pass failed")
        await asyncio.sleep(interval_seconds)


async def relay_forever(services: Services, interval_seconds: float) -> None:
    """Run the outbox until cancelled: at once when a transaction wrote to it, else every
    ``interval_seconds`` (other workers' writes, retries that come due)."""
    wake = services.outbox_written
    while True:
        wake.clear()
        try:
            report = await services.relay.run_until_idle()
            if report.retried or report.parked:
                log.info(
                    "relay: %s done, %s to retry, %s parked",
                    report.done,
                    report.retried,
                    report.parked,
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bad batch must not end the worker
            log.exception("relay batch failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=interval_seconds)


async def run_worker(settings: Settings, *, once: bool = False) -> int:
    from rose_cart.bootstrap import build_services

    services = build_services(settings)
    try:
        if once:
            report = await services.payments.reconcile(every=timedelta(0))
            relayed = await services.relay.run_until_idle()
            print(
                f"checked {report.checked}: {report.paid} paid, {report.expired} expired, "
                f"{report.errors} errors; outbox: {relayed.done} done, {relayed.retried} to "
                f"retry, {relayed.parked} parked"
            )
            return 0 if report.errors == 0 and relayed.parked == 0 else 1
        await asyncio.gather(
            reconcile_forever(services, settings.reconcile_interval_seconds),
            relay_forever(services, settings.relay_interval_seconds),
        )
        return 0
    finally:
        await services.aclose()
