"""Age cells: how long ago something happened, in the compact form ``kubectl get`` shows.

The rule is apimachinery's ``duration.HumanDuration`` (what upstream's printers call through
``translateTimestampSince``), reproduced to the boundary::

    elapsed            shown as
    more than 2 s in   <invalid>   (up to 2 s ahead is clock skew: 0s)
      the future
    < 2 min            45s
    < 10 min           5m30s, 5m when the seconds are zero
    < 3 h              95m
    < 8 h              4h10m, 4h
    < 48 h             30h
    < 8 days           3d4h, 3d
    < 2 years          120d
    < 8 years          2y30d, 2y        (a year is 365 days)
    otherwise          9y

Every unit is truncated, never rounded, as Go's integer duration division does. A missing or
zero timestamp is ``<unknown>``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "UNKNOWN",
    "ZERO_TIME",
    "age",
    "human_duration",
    "parse_time",
]

UNKNOWN = "<unknown>"
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Go's zero ``time.Time``: what a missing ``metav1.Time`` decodes to upstream."""

_MICROS_PER_SECOND = 1_000_000
_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR = 365 * _DAY


def human_duration(elapsed: timedelta) -> str:
    """``elapsed`` as ``kubectl get`` shows an age (the table in the module docstring)."""
    micros = elapsed // timedelta(microseconds=1)
    # Go's int(d.Seconds()) truncates toward zero, so -1.9 s is -1 (within the skew allowance).
    seconds = -(-micros // _MICROS_PER_SECOND) if micros < 0 else micros // _MICROS_PER_SECOND
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 2 * _MINUTE:
        return f"{seconds}s"
    minutes = seconds // _MINUTE
    if minutes < 10:
        return _pair(minutes, "m", seconds % _MINUTE, "s")
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = seconds // _HOUR
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 8 * 24:
        return _pair(hours // 24, "d", hours % 24, "h")
    days = seconds // _DAY
    if seconds < 2 * _YEAR:
        return f"{days}d"
    if seconds < 8 * _YEAR:
        return _pair(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _pair(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def parse_time(value: object) -> datetime | None:
    """A ``metav1.Time`` or ``MicroTime`` string as an aware datetime; None when absent or zero.

    Unparseable text counts as absent: a cell says ``<unknown>`` rather than failing the list.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        # A naive time is UTC, as the API writes every time; any offset is normalised away.
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that leaves year 1
        return None
    return None if parsed == ZERO_TIME else parsed


def age(timestamp: object, now: datetime) -> str:
    """The Age cell for ``timestamp`` (a string from an object, or a parsed datetime)."""
    moment = timestamp if isinstance(timestamp, datetime) else parse_time(timestamp)
    if moment is None or moment == ZERO_TIME:
        return UNKNOWN
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return human_duration(now - moment)
