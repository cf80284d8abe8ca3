"""Claims racing each other: no ticket is ever sold twice over, and an order's claim made
twice at once takes its tickets once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from rose_cart.domain.errors import SoldOut
from rose_cart.domain.identity import CartIdentity
from rose_cart.standalone.events.calendar import ReferenceCalendar
from tests.fakes import FakeClock
from tests.standalone.events.conftest import GARDEN, Calendar, make_calendar

BUYERS = 20


@pytest.fixture
async def pg_cal(postgres_url: str) -> AsyncIterator[Calendar]:
    clock = FakeClock()
    events = ReferenceCalendar.for_url(postgres_url, clock)
    try:
        yield await make_calendar(events, clock)
    finally:
        await events.aclose()


async def _race(cal: Calendar) -> list[BaseException | None]:
    # The cook's table seats five; every buyer has one seat in their cart (pending tickets
    # are not sold, so each was allowed to).
    buyers = range(1, BUYERS + 1)
    for buyer in buyers:
        await cal.events.set_pending_tickets(buyer, cal.cooks_table, 1)
    results = await asyncio.gather(
        *(cal.events.claim_tickets_for_order(1000 + b, b, GARDEN) for b in buyers),
        return_exceptions=True,
    )
    return list(results)


async def _states(cal: Calendar) -> dict[str, int]:
    states: dict[str, int] = {}
    for buyer in range(1, BUYERS + 1):
        for t in await cal.events.tickets_of(buyer):
            states[t.state] = states.get(t.state, 0) + 1
    return states


@pytest.mark.postgres
async def test_twenty_buyers_racing_for_the_last_five_seats_never_oversell(
    pg_cal: Calendar,
) -> None:
    results = await _race(pg_cal)
    won = [r for r in results if r is None]
    lost = [r for r in results if isinstance(r, SoldOut)]
    assert len(won) == 5, results
    assert len(lost) == BUYERS - 5, [r for r in results if r is not None]
    assert all(e.details["ticket_type_id"] == pg_cal.cooks_table for e in lost)
    assert await _states(pg_cal) == {"reserved": 5, "pending": BUYERS - 5}
    assert await pg_cal.available(pg_cal.cooks_table) == 0


async def test_racing_claims_never_oversell_on_either_database(cal: Calendar) -> None:
    await cal.sell(cal.cooks_table, 2)  # three left
    results = await _race(cal)
    assert sum(1 for r in results if r is None) == 3
    assert sum(1 for r in results if isinstance(r, SoldOut)) == BUYERS - 3
    assert await _states(cal) == {"reserved": 3, "pending": BUYERS - 3}


@pytest.mark.postgres
async def test_one_orders_claim_sent_five_times_at_once_takes_its_tickets_once(
    pg_cal: Calendar,
) -> None:
    await pg_cal.events.set_pending_tickets(1, pg_cal.cooks_table, 2)
    await pg_cal.events.set_pending_tickets(1, pg_cal.supper_seat, 3)
    results = await asyncio.gather(
        *(pg_cal.events.claim_tickets_for_order(77, 1, GARDEN) for _ in range(5)),
        return_exceptions=True,
    )
    assert results == [None] * 5
    tickets = await pg_cal.events.tickets_for_order(77)
    assert len(tickets) == 5 and {t.state for t in tickets} == {"reserved"}
    assert await pg_cal.available(pg_cal.cooks_table) == 3
    # Released and claimed again, at once, from several workers: still those five.
    await pg_cal.events.release_for_order(77)
    results = await asyncio.gather(
        *(pg_cal.events.claim_tickets_for_order(77, 1, GARDEN) for _ in range(5)),
        return_exceptions=True,
    )
    assert results == [None] * 5
    assert {t.id for t in await pg_cal.events.tickets_for_order(77)} == {t.id for t in tickets}
    assert await pg_cal.available(pg_cal.cooks_table) == 3


@pytest.mark.postgres
async def test_two_buyers_who_each_want_three_of_the_last_five_do_not_both_get_them(
    pg_cal: Calendar,
) -> None:
    for _ in range(10):
        for buyer in (1, 2):
            await pg_cal.events.set_pending_tickets(buyer, pg_cal.cooks_table, 3)
        order = await pg_cal.sell(pg_cal.supper_seat, 1)  # a fresh pair of order ids
        results = await asyncio.gather(
            pg_cal.events.claim_tickets_for_order(order * 10 + 1, 1, GARDEN),
            pg_cal.events.claim_tickets_for_order(order * 10 + 2, 2, GARDEN),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["NoneType", "SoldOut"]
        assert await pg_cal.available(pg_cal.cooks_table) == 2
        # Whoever won gives them back (the order expired) for the next round.
        for result, order_id in zip(results, (order * 10 + 1, order * 10 + 2), strict=True):
            if result is None:
                await pg_cal.events.release_for_order(order_id)
        assert await pg_cal.available(pg_cal.cooks_table) == 5


@pytest.mark.postgres
async def test_single_statements_run_on_kept_connections_and_outlive_a_database_restart(
    pg_cal: Calendar, postgres_url: str
) -> None:
    events = pg_cal.events
    await events.open()  # as the service does before it serves
    visitor = CartIdentity(session_id="restart-visitor")
    await events.book(visitor, pg_cal.bread_class)
    url = postgres_url.replace("postgresql+asyncpg", "postgresql")
    watcher = await asyncpg.connect(url)
    try:
        count = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        before = await watcher.fetchval(count)
        # A cart page per visitor, many at once: they share the kept connections.
        read = await asyncio.gather(*(events.pending_entries(visitor) for _ in range(60)))
        assert all([e.id for e in r] == [pg_cal.bread_class] for r in read)
        assert await watcher.fetchval(count) == before
        # The database restarts: every session of the events sibling ends.
        await watcher.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await watcher.close()
    answers: list[bool] = []
    for _ in range(4):
        try:
            answers.append(
                [e.id for e in await events.pending_entries(visitor)] == [pg_cal.bread_class]
            )
        except Exception:  # noqa: BLE001 - the driver's own error, whichever it is
            answers.append(False)
    # One read may meet its dead connection; it and the idle ones are given up, and the
    # visitors after it see their booking.
    assert all(answers[1:]), answers
    # A claim of nothing, recorded after the restart, still holds against a late re-claim.
    await events.claim_entries_for_order(77_001, visitor, None, entry_ids=[])
    await events.claim_entries_for_order(77_001, visitor, None)
    assert [e.id for e in await events.pending_entries(visitor)] == [pg_cal.bread_class]
