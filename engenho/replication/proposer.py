"""The contract between the layers that decide commands and the layer that commits them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from engenho.log import Entry, ResourceCommand

__all__ = ["Proposer"]


class Proposer(Protocol):
    """Turns decided commands into committed log entries."""

    @property
    def term(self) -> int:
        """The term this node proposes in."""
        ...

    async def propose(self, commands: Sequence[ResourceCommand]) -> list[Entry]:
        """Append ``commands`` as consecutive entries; return them once committed.

        Raises :class:`engenho.log.LogUnavailableError` when they could not be made durable
        (nothing was appended) and :class:`engenho.log.EncodingError` for commands with no
        canonical form.
        """
        ...
