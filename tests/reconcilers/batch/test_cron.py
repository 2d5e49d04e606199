"""CronJob schedules (:mod:`engenho.reconcilers.cron`): robfig/cron's standard syntax and
semantics, checked against an independent minute-by-minute reading of the fields for random
schedules; ``@every``; time zones; and upstream's most-recent-firing arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engenho.reconcilers.cron import (
    Missed,
    ScheduleError,
    UnknownTimeZoneError,
    most_recent,
    next_delay,
    parse_schedule,
)

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 6, _DAYS))


def _value(text: str, low: int, names: tuple[str, ...]) -> int:
    if text.upper() in names:
        return names.index(text.upper()) + (1 if names is _MONTHS else 0)
    return int(text)


def _expand(field: str, low: int, high: int, names: tuple[str, ...]) -> tuple[set[int], bool]:
    """robfig's getField: the values a field allows, and its star bit (``*`` or ``?``
    without a step above one)."""
    values: set[int] = set()
    star = False
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span in ("*", "?"):
            first, last = low, high
            star = star or step == 1
        else:
            start, _, end = span.partition("-")
            first = _value(start, low, names)
            last = _value(end, low, names) if end else (high if step_text else first)
        values.update(range(first, last + 1, step))
    return values, star


def _oracle(expression: str, after: datetime) -> datetime | None:
    fields = expression.split()
    (minutes, _), (hours, _), (doms, dom_star), (months, _), (dows, dow_star) = (
        _expand(f, low, high, names) for f, (low, high, names) in zip(fields, _FIELDS, strict=True)
    )
    day = after.date()
    for _ in range(366 * 8):
        if day.month in months:
            dom, dow = day.day in doms, (day.weekday() + 1) % 7 in dows
            if (dom and dow) if (dom_star or dow_star) else (dom or dow):
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if moment > after:
                            return moment
        day += timedelta(days=1)
    return None


def _part(low: int, high: int, names: tuple[str, ...], any_ok: bool) -> st.SearchStrategy[str]:
    def name_or_number(value: int) -> str:
        if names and value % 3 == 0:
            return names[value - (1 if names is _MONTHS else 0)].lower()
        return str(value)

    number = st.integers(low, high)
    steps = st.integers(1, max(2, (high - low) // 2))
    options = [
        number.map(name_or_number),
        st.tuples(number, number).map(lambda p: f"{min(p)}-{max(p)}"),
        st.tuples(number, number, steps).map(lambda p: f"{min(p[:2])}-{max(p[:2])}/{p[2]}"),
        st.tuples(number, steps).map(lambda p: f"{p[0]}/{p[1]}"),
        steps.map(lambda k: f"*/{k}"),
        st.just("*"),
    ]
    if any_ok:
        options.append(st.just("?"))
    return st.one_of(options)


def _field(index: int) -> st.SearchStrategy[str]:
    low, high, names = _FIELDS[index]
    part = _part(low, high, names, index in (2, 4))
    return st.lists(part, min_size=1, max_size=3).map(",".join)


expressions = st.tuples(*(_field(i) for i in range(5))).map(" ".join)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@given(expressions, moments)
@settings(max_examples=300)
def test_next_firing_matches_the_fields(expression: str, after: datetime) -> None:
    schedule = parse_schedule(expression)
    expected = _oracle(expression, after)
    found = schedule.next(after)
    if expected is None:
        assert found is None or found > after + timedelta(days=366 * 8 - 2)
    else:
        assert found == expected, expression


def test_descriptors_names_and_every() -> None:
    at = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # a Monday
    cases = {
        "@hourly": datetime(2024, 1, 1, 1, 0, tzinfo=UTC),
        "@daily": datetime(2024, 1, 2, tzinfo=UTC),
        "@midnight": datetime(2024, 1, 2, tzinfo=UTC),
        "@weekly": datetime(2024, 1, 7, tzinfo=UTC),
        "@monthly": datetime(2024, 2, 1, tzinfo=UTC),
        "@yearly": datetime(2025, 1, 1, tzinfo=UTC),
        "@annually": datetime(2025, 1, 1, tzinfo=UTC),
        "30 9 * feb-mar MON-FRI": datetime(2024, 2, 1, 9, 30, tzinfo=UTC),
        "*/20 * * * *": datetime(2024, 1, 1, 0, 20, tzinfo=UTC),
        "0 0 1 * SUN": datetime(2024, 1, 7, tzinfo=UTC),
    }
    for expression, expected in cases.items():
        assert parse_schedule(expression).next(at) == expected, expression
    every = parse_schedule("@every 1h30m")
    assert every.next(datetime(2024, 1, 1, 0, 0, 10, 500, tzinfo=UTC)) == datetime(
        2024, 1, 1, 1, 30, 10, tzinfo=UTC
    )
    assert parse_schedule("@every 200ms").every == timedelta(seconds=1)
    assert parse_schedule("0 0 31 2 *").next(at) is None


def test_time_zones() -> None:
    at = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert parse_schedule("0 9 * * *", "Asia/Tokyo").next(at) == datetime(
        2024, 1, 2, 0, 0, tzinfo=UTC
    )
    assert parse_schedule("0 9 * * *", "America/New_York").next(at) == datetime(
        2024, 1, 1, 14, 0, tzinfo=UTC
    )
    with pytest.raises(UnknownTimeZoneError):
        parse_schedule("* * * * *", "Mars/Olympus_Mons")


def test_daylight_saving_changes_as_robfig_walks_them() -> None:
    # 02:30 does not exist on 2024-03-10 in New York: that day has no firing.
    spring = parse_schedule("30 2 * * *", "America/New_York")
    assert spring.next(datetime(2024, 3, 9, 12, tzinfo=UTC)) == datetime(
        2024, 3, 11, 6, 30, tzinfo=UTC
    )
    # 01:30 happens twice on 2024-11-03: both fire.
    autumn = parse_schedule("30 1 * * *", "America/New_York")
    first = autumn.next(datetime(2024, 11, 2, 12, tzinfo=UTC))
    assert first == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert autumn.next(first) == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "schedule", ["* * * *", "61 * * * *", "@fortnightly", "* * * * * *", "@every 1y"]
)
def test_unparseable(schedule: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(schedule)


def test_most_recent_firing_and_missed_counts() -> None:
    hourly = parse_schedule("0 * * * *")
    start = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert most_recent(hourly, start, start + timedelta(minutes=30)) == (None, Missed.NONE)
    assert most_recent(hourly, start, start + timedelta(hours=1, minutes=5)) == (
        datetime(2024, 1, 1, 11, 0, tzinfo=UTC),
        Missed.NONE,
    )
    assert most_recent(hourly, start, start + timedelta(hours=3, minutes=30)) == (
        datetime(2024, 1, 1, 13, 0, tzinfo=UTC),
        Missed.FEW,
    )
    latest, missed = most_recent(hourly, start, start + timedelta(days=10))
    assert (latest, missed) == (start + timedelta(days=10), Missed.MANY)
    with pytest.raises(ScheduleError):
        most_recent(parse_schedule("0 0 31 2 *"), start, start + timedelta(days=1))


@given(expressions, moments, st.integers(0, 60 * 24 * 40))
@settings(max_examples=150)
def test_most_recent_is_the_last_firing_before_now(
    expression: str, earliest: datetime, minutes: int
) -> None:
    schedule = parse_schedule(expression)
    now = earliest + timedelta(minutes=minutes, seconds=30)
    try:
        latest, _missed = most_recent(schedule, earliest, now)
    except ScheduleError:
        return
    first = schedule.next(earliest)
    if latest is None:
        assert first is None or first > now
        return
    assert earliest < latest <= now
    upcoming = schedule.next(latest)
    assert upcoming is None or upcoming > now


def test_next_delay_is_just_after_the_next_firing() -> None:
    hourly = parse_schedule("0 * * * *")
    start = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    now = datetime(2024, 1, 1, 10, 45, tzinfo=UTC)
    assert next_delay(hourly, start, now) == pytest.approx(15 * 60 + 0.1)
    assert date(2024, 1, 1).isoweekday() == 1  # the calendar the cases above assume
