"""Tiers of the runtime configuration, lowest to highest, and the source of a value."""

from __future__ import annotations

import enum

from attrs import frozen

__all__ = ["Source", "Tier"]


class Tier(enum.Enum):
    DEFAULT = "default"
    """Built-in prescribed defaults: a working single node with no configuration at all."""
    FILE = "file"
    """The first configuration file found (``--config``, ``$ENGENHO_CONFIG``, ...)."""
    ENV = "env"
    """``ENGENHO_<SECTION>__<FIELD>`` environment variables."""
    FLAG = "flag"
    """Command-line flags."""

    @property
    def rank(self) -> int:
        return list(Tier).index(self)


@frozen
class Source:
    """Which tier supplied a value, and from where in it (a file, a variable, a flag)."""

    tier: Tier
    origin: str

    def __str__(self) -> str:
        return f"{self.tier.value} {self.origin}"
