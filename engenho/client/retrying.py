"""When to try again and how long to wait: request retries and watch reconnects.

Delays grow exponentially with "equal jitter" (half fixed, half random), so many clients
that failed together do not come back together, yet none retries in a tight loop. A server's
``Retry-After`` (seconds or an HTTP date) replaces the computed delay, up to a cap.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

from attrs import define, frozen

__all__ = ["NO_RETRIES", "Backoff", "RetryPolicy", "parse_retry_after"]


@frozen(kw_only=True)
class RetryPolicy:
    """How a request is retried after a 429, a 503 or a connection error.

    ``attempts`` counts every try, the first included. Delays run ``initial``,
    ``initial * factor``, ... up to ``cap``, jittered; ``Retry-After`` is honoured up to
    ``max_retry_after`` seconds (a longer ask fails the request instead of stalling it).
    """

    attempts: int = 5
    initial: float = 0.2
    factor: float = 2.0
    cap: float = 10.0
    max_retry_after: float = 60.0

    def backoff(self) -> Backoff:
        return Backoff(initial=self.initial, factor=self.factor, cap=self.cap)


NO_RETRIES = RetryPolicy(attempts=1)


@define
class Backoff:
    """Successive jittered delays; :meth:`reset` after a success starts over."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    failures: int = 0
    rng: random.Random = random.Random()  # noqa: RUF009 - one shared generator is intended

    def next(self) -> float:
        """The delay before the next try (and count one more failure)."""
        base = min(self.cap, self.initial * self.factor**self.failures)
        self.failures += 1
        return base / 2 + self.rng.uniform(0, base / 2)

    def reset(self) -> None:
        self.failures = 0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
