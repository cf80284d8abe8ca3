"""Demo calendars: the bakery's bread-making class on the coming Saturdays, the community
garden's harvest supper, and a concert in the Old Chapel — always in the future.

Seeding is idempotent: it adds only what is missing, so every start-up of the demo keeps
three bread classes and one supper and one concert ahead of today.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from rose_cart.standalone.events.calendar import NewEntry, NewTicketType, ReferenceCalendar

BAKERY, GARDEN, CHAPEL = 101, 102, 103
SATURDAY, FRIDAY = 5, 4
BREAD_CLASSES_AHEAD = 3


def local_zone() -> tzinfo:
    """The co-op's own time (Europe/London), or UTC where the zone database is missing."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Europe/London")
    except Exception:  # zoneinfo raises several kinds when the data is absent
        return UTC


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=local_zone()).astimezone(UTC)


def _next_weekday(after: date, weekday: int, min_days: int = 1) -> date:
    day = after + timedelta(days=min_days)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def bread_class(day: date) -> NewEntry:
    return NewEntry(
        slug=f"bread-class-{day.isoformat()}",
        name="Sourdough bread-making class",
        start_at=_at(day, 10),
        end_at=_at(day, 13),
        cost=Decimal("35.00"),
        bookable=True,
        description=(
            "Three hours at the bakery's big table with our head baker: mix, shape and bake "
            "a sourdough loaf and a tray of rosemary focaccia, and take home a jar of our "
            "starter. Aprons, coffee and cinnamon buns included."
        ),
    )


def harvest_supper(day: date) -> NewEntry:
    return NewEntry(
        slug=f"harvest-supper-{day.isoformat()}",
        name="Harvest supper in the garden",
        start_at=_at(day, 18, 30),
        end_at=_at(day, 22),
        cost=Decimal("0.00"),
        description=(
            "A long-table supper in the big polytunnel to celebrate the harvest: three "
            "courses cooked from what we grew this year, cider from the orchard, and a "
            "fiddle band after pudding. Bring a jumper."
        ),
        ticket_types=(
            NewTicketType(
                "Supper", Decimal("18.00"), 40, "Three courses and a glass of orchard cider."
            ),
            NewTicketType("Under 12s", Decimal("8.00"), 20, "Two courses and apple juice."),
            NewTicketType(
                "Cook's table",
                Decimal("30.00"),
                5,
                "Sit with the cooks by the fire pit: an extra tasting course and a glass of "
                "something special. Only five seats.",
            ),
        ),
    )


def chapel_concert(day: date) -> NewEntry:
    return NewEntry(
        slug=f"candlelit-quartet-{day.isoformat()}",
        name="Candlelit string quartet",
        start_at=_at(day, 19, 30),
        end_at=_at(day, 21, 30),
        cost=Decimal("0.00"),
        description=(
            "The Ashgrove Quartet play Haydn, Dvořák's “American” quartet and folk tunes "
            "by candlelight in the Old Chapel. Tea and cake in the interval."
        ),
        ticket_types=(
            NewTicketType("Seat", Decimal("12.00"), 60),
            NewTicketType("Concession", Decimal("8.00"), 20, "Students, under 18s, over 65s."),
        ),
    )


async def seed_demo_events(calendar: ReferenceCalendar) -> None:
    now = calendar.clock.now()
    today = now.astimezone(local_zone()).date()
    upcoming = [e.slug for e in await calendar.upcoming()]

    bakery = await calendar.ensure_calendar("bakery-classes", "Bakery classes", BAKERY)
    ahead = sum(1 for slug in upcoming if slug.startswith("bread-class-"))
    day = today
    while ahead < BREAD_CLASSES_AHEAD:
        day = _next_weekday(day, SATURDAY)
        entry = bread_class(day)
        if entry.slug not in upcoming:
            await calendar.ensure_entry(bakery, entry)
            ahead += 1

    garden = await calendar.ensure_calendar("garden-gatherings", "Garden gatherings", GARDEN)
    if not any(slug.startswith("harvest-supper-") for slug in upcoming):
        await calendar.ensure_entry(
            garden, harvest_supper(_next_weekday(today, SATURDAY, min_days=14))
        )

    chapel = await calendar.ensure_calendar("chapel-concerts", "Concerts at the chapel", CHAPEL)
    if not any(slug.startswith("candlelit-quartet-") for slug in upcoming):
        await calendar.ensure_entry(chapel, chapel_concert(_next_weekday(today, FRIDAY, 9)))
