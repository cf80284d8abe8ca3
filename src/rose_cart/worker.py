"""The reconciler: asks SumUp about payable orders and expires stale ones.

Runs as ``rose-cart worker`` (any number of copies, on any host) and as a background task
inside the standalone server.
"""

from __future__ import annotations

import asyncio
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


async def run_worker(settings: Settings, *, once: bool = False) -> int:
    from rose_cart.bootstrap import build_services

    services = build_services(settings)
    try:
        if once:
            report = await services.payments.reconcile(every=timedelta(0))
            print(
                f"checked {report.checked}: {report.paid} paid, {report.expired} expired, "
                f"{report.errors} errors"
            )
            return 0 if report.errors == 0 else 1
        await reconcile_forever(services, settings.reconcile_interval_seconds)
        return 0
    finally:
        await services.aclose()
