"""The outbox relay: runs every stored command and delivers every activity, at least once.

A relay claims a batch of due records with ``FOR UPDATE SKIP LOCKED`` and leases them (their
next attempt is pushed ahead and counted) in one short transaction, then works outside any
transaction, then records each outcome. Two relays never take the same record at once; a
relay that dies mid-batch only delays its records until the lease runs out. A record that
keeps failing is parked for an admin — never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rose_cart.domain.errors import CartError
from rose_cart.ports import Clock, OutboxRecord, Subscriber, UnitOfWorkFactory

log = logging.getLogger(__name__)

#: How long a claimed record is left to its relay before another may take it.
DEFAULT_LEASE = timedelta(minutes=2)
#: After this many tries a record is parked for an admin.
DEFAULT_MAX_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class RelayReport:
    done: int = 0
    retried: int = 0
    parked: int = 0

    @property
    def ran(self) -> int:
        return self.done + self.retried + self.parked


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … at most an hour."""
    return min(timedelta(seconds=5 * 2 ** max(attempts - 1, 0)), timedelta(hours=1))


def activity_document(record: OutboxRecord) -> dict[str, Any]:
    """An ActivityStreams document with a stable id, so a consumer drops duplicates."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"urn:uuid:{record.id}",
        "type": record.type,
        "published": record.published.isoformat(),
        "object": {"type": record.object_type, "id": record.object_id, **record.payload},
    }


class OutboxRelay:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        run_command: Callable[[OutboxRecord], Awaitable[None]],
        subscriber: Subscriber,
        clock: Clock,
        *,
        lease: timedelta = DEFAULT_LEASE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.uow = uow
        self.run_command = run_command
        self.subscriber = subscriber
        self.clock = clock
        self.lease = lease
        self.max_attempts = max_attempts

    async def run_once(self, limit: int = 20) -> RelayReport:
        """One batch: claim what is due, run it, record what happened."""
        async with self.uow() as tx:
            records = await tx.outbox.claim_due(self.clock.now(), self.lease, limit)
        done = retried = parked = 0
        for record in records:
            outcome = await self._run(record)
            done += outcome == "done"
            retried += outcome == "retry"
            parked += outcome == "parked"
        return RelayReport(done, retried, parked)

    async def run_until_idle(self, limit: int = 20, rounds: int = 50) -> RelayReport:
        """Batches until nothing is due (commands may add records as they run)."""
        total = RelayReport()
        for _ in range(rounds):
            report = await self.run_once(limit)
            total = RelayReport(
                total.done + report.done,
                total.retried + report.retried,
                total.parked + report.parked,
            )
            if report.ran < limit:
                break
        return total

    async def _run(self, record: OutboxRecord) -> str:
        try:
            if record.kind == "command":
                await self.run_command(record)
            else:
                await self.subscriber.deliver(activity_document(record))
        except Exception as exc:  # noqa: BLE001 - whatever failed is retried, then parked
            error = exc.message if isinstance(exc, CartError) else repr(exc)
            now = self.clock.now()
            async with self.uow() as tx:
                if record.attempts >= self.max_attempts:
                    await tx.outbox.park(record.id, error, now)
                    log.error(
                        "outbox %s %s (order %s) parked after %s tries: %s",
                        record.kind,
                        record.type,
                        record.order_id,
                        record.attempts,
                        error,
                    )
                    return "parked"
                await tx.outbox.retry_later(record.id, error, now + backoff(record.attempts))
            log.warning("outbox %s %s failed, will retry: %s", record.kind, record.type, error)
            return "retry"
        async with self.uow() as tx:
            await tx.outbox.finish(record.id, self.clock.now())
        return "done"

    async def retry_parked(self, record_id: str) -> bool:
        """An admin puts a parked record back in the queue."""
        async with self.uow() as tx:
            return await tx.outbox.unpark(record_id, self.clock.now())
