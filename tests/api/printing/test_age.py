"""Age cells: ``human_duration`` at every boundary of upstream's rule, property tests against
an independent reference written from the documented rule (and monotonicity), and ``age`` on
missing, zero, unparseable, future and fractional timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.api.printing import human_duration
from engenho.api.printing.age import age

MINUTE, HOUR, DAY = 60, 3600, 86400
YEAR = 365 * DAY


def reference(elapsed: timedelta) -> str:
    """The rule as documented (contract §16.2 and apimachinery's HumanDuration), restated as a
    table of (exclusive upper bound in seconds, text) and truncating with exact fractions."""
    micros = Fraction(elapsed // timedelta(microseconds=1), 1_000_000)
    s = int(micros)  # int() of a Fraction truncates toward zero, as Go's conversion does
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    m, h, d = s // MINUTE, s // HOUR, s // DAY
    y, dy = divmod(d, 365)

    def two(a: int, ua: str, b: int, ub: str) -> str:
        return f"{a}{ua}" + (f"{b}{ub}" if b else "")

    rules = [
        (2 * MINUTE, f"{s}s"),
        (10 * MINUTE, two(m, "m", s % 60, "s")),
        (3 * HOUR, f"{m}m"),
        (8 * HOUR, two(h, "h", m % 60, "m")),
        (48 * HOUR, f"{h}h"),
        (8 * DAY, two(d, "d", h % 24, "h")),
        (2 * YEAR, f"{d}d"),
        (8 * YEAR, two(y, "y", dy, "d")),
    ]
    return next((text for limit, text in rules if s < limit), f"{y}y")


UNITS = {"y": YEAR, "d": DAY, "h": HOUR, "m": MINUTE, "s": 1}


def seconds_shown(text: str) -> tuple[int, int]:
    """What a human reads from an age: its value in seconds and its smallest unit."""
    parts = re.findall(r"(\d+)([ydhms])", text)
    assert "".join(n + u for n, u in parts) == text, text
    return sum(int(n) * UNITS[u] for n, u in parts), UNITS[parts[-1][1]]


@pytest.mark.parametrize(
    ("elapsed", "shown"),
    [
        (timedelta(seconds=-3), "<invalid>"),
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-1.999), "0s"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(seconds=-0.5), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=0.999), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119.9), "119s"),
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=2, seconds=1), "2m1s"),
        (timedelta(minutes=5, seconds=30), "5m30s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(minutes=10, seconds=59), "10m"),
        (timedelta(minutes=95), "95m"),
        (timedelta(hours=2, minutes=59, seconds=59), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=1), "3h1m"),
        (timedelta(hours=4, minutes=10), "4h10m"),
        (timedelta(hours=7, minutes=59, seconds=59), "7h59m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=8, minutes=59), "8h"),
        (timedelta(hours=30), "30h"),
        (timedelta(hours=47, minutes=59), "47h"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=3, hours=4), "3d4h"),
        (timedelta(days=7, hours=23, minutes=59), "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=120), "120d"),
        (timedelta(days=729, hours=23), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=760), "2y30d"),
        (timedelta(days=8 * 365 - 1), "7y364d"),
        (timedelta(days=8 * 365), "8y"),
        (timedelta(days=9 * 365 + 100), "9y"),
        (timedelta(days=100 * 365), "100y"),
    ],
)
def test_boundaries(elapsed: timedelta, shown: str) -> None:
    assert human_duration(elapsed) == shown
    assert reference(elapsed) == shown


ELAPSED = st.timedeltas(min_value=timedelta(days=-10), max_value=timedelta(days=40 * 365))


@given(ELAPSED)
def test_matches_the_reference(elapsed: timedelta) -> None:
    assert human_duration(elapsed) == reference(elapsed)


@given(ELAPSED, ELAPSED)
def test_monotone_and_truncating(a: timedelta, b: timedelta) -> None:
    a, b = sorted((abs(a), abs(b)))
    shown_a, unit_a = seconds_shown(human_duration(a))
    shown_b, _ = seconds_shown(human_duration(b))
    assert shown_a <= shown_b
    # An age never overstates, and understates by less than the smallest unit it shows.
    assert shown_a <= a.total_seconds() < shown_a + unit_a


NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timestamp", "shown"),
    [
        (None, "<unknown>"),
        ("", "<unknown>"),
        ("yesterday", "<unknown>"),
        (42, "<unknown>"),
        ("0001-01-01T00:00:00Z", "<unknown>"),
        ("2025-06-01T11:59:15Z", "45s"),
        ("2025-06-01T11:59:14.999999Z", "45s"),
        ("2025-06-01T11:59:15.000001Z", "44s"),
        ("2025-06-01T13:59:15+02:00", "45s"),
        ("2025-06-01T11:59:15", "45s"),
        ("2025-06-01T12:00:01.5Z", "0s"),
        ("2025-06-01T12:00:02Z", "<invalid>"),
        (datetime(2025, 6, 1, 11, 0, tzinfo=UTC), "60m"),
        (datetime(2025, 6, 1, 11, 0), "60m"),
        (datetime(1, 1, 1, tzinfo=UTC), "<unknown>"),
    ],
)
def test_age(timestamp: object, shown: str) -> None:
    assert age(timestamp, NOW) == shown


def test_age_of_a_naive_now_is_utc() -> None:
    assert age("2025-06-01T11:00:00Z", NOW.replace(tzinfo=None)) == "60m"
