"""The demo's calendars look like a real co-op's, always lie ahead, and are seeded once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rose_cart.app import create_app
from rose_cart.bootstrap import Overrides
from rose_cart.config import Settings
from rose_cart.standalone.events.calendar import EntryView, ReferenceCalendar
from rose_cart.standalone.events.demo import local_zone, seed_demo_events
from tests.fakes import FakeClock


@pytest.fixture
async def events(database_url: str) -> AsyncIterator[ReferenceCalendar]:
    calendar = ReferenceCalendar.for_url(database_url, FakeClock())
    yield calendar
    await calendar.aclose()


def named(entries: list[EntryView], prefix: str) -> list[EntryView]:
    return [e for e in entries if e.slug.startswith(prefix)]


async def test_the_bakery_class_and_the_garden_supper_lie_ahead_and_are_seeded_once(
    events: ReferenceCalendar,
) -> None:
    await seed_demo_events(events)
    first = await events.upcoming()
    await seed_demo_events(events)
    assert [e.id for e in await events.upcoming()] == [e.id for e in first]

    now = events.clock.now()
    classes = named(first, "bread-class-")
    assert len(classes) == 3
    for entry in classes:
        start = entry.start_at.astimezone(local_zone())
        assert entry.bookable and entry.page_post_id == 101
        assert entry.start_at > now and (start.weekday(), start.hour) == (5, 10)
        assert str(entry.cost) == "35.00" and entry.currency == "GBP"
    assert len({e.start_at for e in classes}) == 3

    [supper] = named(first, "harvest-supper-")
    assert supper.page_post_id == 102 and not supper.bookable and supper.start_at > now
    assert len(supper.ticket_types) >= 2
    assert 5 in [t.capacity for t in supper.ticket_types]
    assert all(t.available == t.capacity for t in supper.ticket_types)


async def test_seeding_a_week_later_adds_the_next_class_and_keeps_the_supper(
    events: ReferenceCalendar,
) -> None:
    await seed_demo_events(events)
    [supper] = named(await events.upcoming(), "harvest-supper-")
    assert isinstance(events.clock, FakeClock)
    events.clock.advance(days=7)
    await seed_demo_events(events)
    later = await events.upcoming()
    assert len(named(later, "bread-class-")) == 3
    assert [e.id for e in named(later, "harvest-supper-")] == [supper.id]


async def _entries_after_start(path: Path, demo_data: bool) -> list[object]:
    app = create_app(
        Settings(
            database_url=f"sqlite+aiosqlite:///{path}",
            run_reconciler=False,
            demo_data=demo_data,
        ),
        Overrides(clock=FakeClock()),
    )
    async with app.test_app() as running:
        response = await running.test_client().get("/events/api/entries")
        assert response.status_code == 200
        data: list[object] = await response.get_json()
    return data


async def test_the_demo_migrates_and_seeds_its_events_at_start_up(tmp_path: Path) -> None:
    assert len(await _entries_after_start(tmp_path / "demo.db", demo_data=True)) == 5
    # A restart adds nothing.
    assert len(await _entries_after_start(tmp_path / "demo.db", demo_data=True)) == 5
    assert await _entries_after_start(tmp_path / "plain.db", demo_data=False) == []


async def test_two_workers_starting_at_once_seed_one_set_of_events(database_url: str) -> None:
    # `serve --workers 2` on a fresh database: both workers seed as they start.
    first = ReferenceCalendar.for_url(database_url, FakeClock())
    second = ReferenceCalendar.for_url(database_url, FakeClock())
    try:
        await asyncio.gather(seed_demo_events(first), seed_demo_events(second))
        await asyncio.gather(seed_demo_events(first), seed_demo_events(second))
        upcoming = await first.upcoming()
    finally:
        await first.aclose()
        await second.aclose()
    assert len(named(upcoming, "bread-class-")) == 3
    assert len(named(upcoming, "harvest-supper-")) == 1
    assert len(named(upcoming, "candlelit-quartet-")) == 1
