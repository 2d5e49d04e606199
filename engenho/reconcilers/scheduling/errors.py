"""Errors of the scheduler::

    SchedulingError
    └── ConfigurationError   a scheduler profile or plugin configuration is not usable

Scheduling failures of a pod are not errors: they are :class:`.Unschedulable` decisions.
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "SchedulingError"]


class SchedulingError(Exception):
    """Base class of the scheduler's errors."""


class ConfigurationError(SchedulingError, ValueError):
    """Raised by :func:`.profiles_from_config` for a configuration it cannot honour (an
    unknown plugin or scoring strategy, a malformed field), naming the offending field."""
