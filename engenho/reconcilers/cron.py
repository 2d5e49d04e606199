"""CronJob schedules: when a schedule fires, and which firing a CronJob is due for.

Upstream parses ``spec.schedule`` with robfig/cron (v3)'s standard parser and this module
ports it: five fields (minute, hour, day of month, month, day of week) made of lists, ranges,
steps (``N/step`` is ``N-max/step``), ``*`` and ``?``, and month and day names; the descriptors
``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly``; and
``@every <duration>``. A field written with ``*`` or ``?`` (and no step above one) is
*unrestricted*: when the day of month or day of week is, a day must match both; when neither
is, either will do. Firings are found by robfig's SpecSchedule.Next walk (month, day, hour,
minute, second; five years at most) in ``spec.timeZone`` (the controller's zone, UTC here, when
unset), with Go's reading of wall-clock times that a DST change skips.

(croniter was tried first; it reads ranges such as ``0-0`` in the day-of-week field as every
day, which a property test against an independent reading of the fields caught, so the
schedule is ported rather than borrowed.)

:func:`most_recent` and :func:`next_delay` are upstream's mostRecentScheduleTime and
nextScheduleTimeDuration, pure functions of the CronJob's times and the clock.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import frozen

__all__ = [
    "DESCRIPTORS",
    "Missed",
    "Schedule",
    "ScheduleError",
    "UnknownTimeZoneError",
    "most_recent",
    "next_delay",
    "parse_schedule",
    "zone_of",
]

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DAY_NAMES = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
# (minimum, maximum, names) of minute, hour, day of month, month, day of week
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTH_NAMES),
    (0, 6, _DAY_NAMES),
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NEXT_DELTA = timedelta(milliseconds=100)
"""Requeue a little after the next firing (upstream's nextScheduleDelta)."""
_TOO_MANY = 100
_SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """The schedule cannot be parsed (upstream's UnparseableSchedule)."""


class UnknownTimeZoneError(ValueError):
    """``spec.timeZone`` names no zone this machine knows."""


def zone_of(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone {name}") from exc


def _go_duration(text: str) -> timedelta:
    """A Go duration (``1h30m``, ``90s``, ``1.5h``)."""
    position, total = 0, 0.0
    if not text:
        raise ScheduleError(f'time: invalid duration "{text}"')
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            raise ScheduleError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return timedelta(seconds=total)


def _number(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    try:
        value = int(text)
    except ValueError as exc:
        raise ScheduleError(f"failed to parse int from {text}: {exc}") from exc
    if value < 0:
        raise ScheduleError(f"negative number ({value}) not allowed: {text}")
    return value


def _range(expr: str, low: int, high: int, names: dict[str, int]) -> tuple[int, bool]:
    """robfig's getRange: the bits of one list item, and whether it is unrestricted."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    star = False
    if low_and_high[0] in ("*", "?"):
        start, end, star = low, high, True
    else:
        start = _number(low_and_high[0], names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _number(low_and_high[1], names)
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _number(range_and_step[1], {})
        if len(low_and_high) == 1:
            end = high  # "N/step" means "N-max/step"
        if step > 1:
            star = False
    else:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise ScheduleError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")
    bits = 0
    for value in range(start, end + 1, step):
        bits |= 1 << value
    return bits, star


def _field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[int, bool]:
    bits, star = 0, False
    for item in (part for part in text.split(",") if part):
        more, unrestricted = _range(item, low, high, names)
        bits |= more
        star = star or unrestricted
    return bits, star


def _go_date(
    zone: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """Go's time.Date: out-of-range days roll over, and a wall time a DST change skips takes
    the offset in force just after the change (so 02:30 on a 02:00 spring-forward is 01:30
    standard time, 06:30 UTC in New York), as Go computes it."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    base = datetime.combine(date(year, month, 1) + timedelta(days=day - 1), datetime.min.time())
    wall = base.replace(hour=hour, minute=minute, second=second, tzinfo=UTC)
    offset = wall.astimezone(zone).utcoffset() or timedelta()
    at = wall - offset
    actual = at.astimezone(zone).utcoffset() or timedelta()
    if actual != offset:
        at = wall - actual
    return at.astimezone(zone)


def _plus(moment: datetime, **delta: float) -> datetime:
    """Absolute time arithmetic (Go's Time.Add), whatever the zone's clock does meanwhile."""
    zone = moment.tzinfo
    assert zone is not None
    return (moment.astimezone(UTC) + timedelta(**delta)).astimezone(zone)


@frozen
class Schedule:
    minutes: int = 0
    hours: int = 0
    days: int = 0
    months: int = 0
    weekdays: int = 0
    """Bit sets of the values each field allows."""
    any_day: bool = False
    """The day of month was written unrestricted (``*`` or ``?``)."""
    any_weekday: bool = False
    zone: tzinfo = UTC
    every: timedelta | None = None

    def _day_matches(self, moment: datetime) -> bool:
        day = bool(self.days >> moment.day & 1)
        weekday = bool(self.weekdays >> (moment.isoweekday() % 7) & 1)
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday

    def next(self, after: datetime) -> datetime | None:
        """The first firing strictly after ``after`` (None when there is none within five
        years, such as on the 31st of February): robfig's SpecSchedule.Next."""
        if self.every is not None:
            # robfig's ConstantDelaySchedule: the delay from ``after``, sub-seconds dropped.
            return after.replace(microsecond=0) + self.every
        zone = self.zone
        moment = _plus(after.astimezone(zone).replace(microsecond=0), seconds=1)
        added = False
        limit = moment.year + _SEARCH_YEARS
        while True:  # robfig's WRAP
            if moment.year > limit:
                return None
            wrapped = False
            while not self.months >> moment.month & 1:
                if not added:
                    added = True
                    moment = _go_date(zone, moment.year, moment.month, 1)
                moment = _go_date(
                    zone,
                    moment.year,
                    moment.month + 1,
                    moment.day,
                    moment.hour,
                    moment.minute,
                    moment.second,
                )
                if moment.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(moment):
                if not added:
                    added = True
                    moment = _go_date(zone, moment.year, moment.month, moment.day)
                moment = _go_date(
                    zone,
                    moment.year,
                    moment.month,
                    moment.day + 1,
                    moment.hour,
                    moment.minute,
                    moment.second,
                )
                # Midnight may not exist on a DST day: land back on it (robfig does).
                if moment.hour != 0:
                    shift = 24 - moment.hour if moment.hour > 12 else -moment.hour
                    moment = _plus(moment, hours=shift)
                if moment.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self.hours >> moment.hour & 1:
                if not added:
                    added = True
                    moment = _go_date(zone, moment.year, moment.month, moment.day, moment.hour)
                moment = _plus(moment, hours=1)
                if moment.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self.minutes >> moment.minute & 1:
                if not added:
                    added = True
                    moment = moment.replace(second=0)
                moment = _plus(moment, minutes=1)
                if moment.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while moment.second != 0:  # the standard parser fires at second 0
                if not added:
                    added = True
                moment = _plus(moment, seconds=1)
                if moment.second == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            return moment.astimezone(UTC)


def parse_schedule(schedule: str, time_zone: str | None = None) -> Schedule:
    """Parse ``spec.schedule`` in ``spec.timeZone`` (robfig's ParseStandard); raises
    :class:`ScheduleError` or :class:`UnknownTimeZoneError`."""
    zone = zone_of(time_zone)
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        # Not supported by upstream either (validation refuses it), but robfig parses it.
        prefix, _, text = text.partition(" ")
        zone = zone_of(prefix.partition("=")[2])
        text = text.strip()
    if text.startswith("@every "):
        delay = _go_duration(text.removeprefix("@every ").strip())
        delay = max(timedelta(seconds=int(delay.total_seconds())), timedelta(seconds=1))
        return Schedule(zone=zone, every=delay)
    if text.startswith("@"):
        if text not in DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {text}")
        text = DESCRIPTORS[text]
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: {schedule}")
    parsed = [_field(f, *bounds) for f, bounds in zip(fields, _BOUNDS, strict=True)]
    (minutes, _), (hours, _), (days, any_day), (months, _), (weekdays, any_weekday) = parsed
    return Schedule(minutes, hours, days, months, weekdays, any_day, any_weekday, zone)


class Missed(enum.Enum):
    NONE = "none"
    FEW = "few"
    MANY = "many"
    """More than 100 firings were missed (upstream reports TooManyMissedTimes)."""


def most_recent(
    schedule: Schedule,
    earliest: datetime,
    now: datetime,
) -> tuple[datetime | None, Missed]:
    """The latest firing after ``earliest`` and not after ``now`` (None when there is none),
    and how many firings were missed (upstream's mostRecentScheduleTime; ``earliest`` is the
    last schedule time or the creation time, raised to ``now - startingDeadlineSeconds``).
    Raises :class:`ScheduleError` when two firings are less than a second apart."""
    first = schedule.next(earliest)
    second = schedule.next(first) if first is not None else None
    if first is None or second is None:
        # Fields that never match (robfig gives up and reports a zero interval).
        raise ScheduleError("time difference between two schedules is less than 1 second")
    if now < first:
        return None, Missed.NONE
    if now < second:
        return first, Missed.NONE
    interval = round((second - first).total_seconds())
    if interval < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int((now - first).total_seconds()) // interval + 1
    # Upstream's approximation: start about one interval before where the last firing should
    # be, and let the schedule find the real ones from there. For a schedule whose gaps vary
    # (``0 0,1 * * sat``) that start can fall after the last firing, and upstream then misses
    # it; here the start steps back (1, 2, 4, ... intervals, down to ``earliest``) instead.
    back = 1
    steps = missed - 2
    while True:
        origin = first + timedelta(seconds=steps * interval) if steps >= 0 else earliest
        latest = _last_until(schedule, origin, now)
        if latest is not None or steps < 0:
            break
        steps -= back
        back *= 2
    kind = Missed.MANY if missed > _TOO_MANY else Missed.FEW if missed > 1 else Missed.NONE
    return latest, kind


def _last_until(schedule: Schedule, origin: datetime, now: datetime) -> datetime | None:
    """The last firing after ``origin`` and not after ``now``."""
    latest: datetime | None = None
    moment = schedule.next(origin)
    while moment is not None and moment <= now:
        latest = moment
        moment = schedule.next(moment)
    return latest


def next_delay(schedule: Schedule, earliest: datetime, now: datetime) -> float:
    """Seconds until the sync after the next firing (nextScheduleTimeDuration)."""
    try:
        latest, missed = most_recent(schedule, earliest, now)
    except ScheduleError:
        latest, missed = now, Missed.NONE
    if latest is None:
        latest = earliest if missed is Missed.NONE else now
    upcoming = schedule.next(latest)
    if upcoming is None:
        return 3600.0  # the schedule never fires again: look now and then
    return max(((upcoming + _NEXT_DELTA) - now).total_seconds(), 0.0)
