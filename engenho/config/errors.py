"""Errors raised by :mod:`engenho.config`.

::

    ConfigError                  base of every error in this package
    ├── InvalidConfigError       a document or a value is refused; carries every problem found
    └── ConfigFileError          a configuration file cannot be found, read or parsed as YAML

Both are also ``ValueError``: the caller supplied a bad value or a bad path.
"""

from __future__ import annotations

from collections.abc import Iterable

from engenho.config.problems import Problem

__all__ = ["ConfigError", "ConfigFileError", "InvalidConfigError"]


class ConfigError(Exception):
    """Base class of every error raised by :mod:`engenho.config`."""


class InvalidConfigError(ConfigError, ValueError):
    """Raised when a ClusterConfig or an EngenhoConfig is refused, at construction or while
    parsing, layering or validating. ``problems`` lists every problem found (never only the
    first), each naming the field path, and for a layered config the tier that supplied it."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid configuration")


class ConfigFileError(ConfigError, ValueError):
    """Raised when a configuration file named explicitly does not exist, cannot be read, is not
    YAML, or repeats a key."""
