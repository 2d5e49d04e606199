"""Runs the reconcilers of a node together and stops them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engenho.reconcilers.controller import Controller

__all__ = ["ControllerManager"]

_log = logging.getLogger("engenho.reconcilers")


class ControllerManager:
    def __init__(self, controllers: list[Controller]) -> None:
        self.controllers = controllers
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        async def run_all() -> None:
            async with asyncio.TaskGroup() as group:
                for controller in self.controllers:
                    group.create_task(controller.run(), name=controller.name)

        self._task = asyncio.create_task(run_all(), name="controller-manager")

    async def stop(self) -> None:
        """Cancel every controller: work in flight is abandoned, not half-applied (each write
        is one command, and a cancelled proposal is still committed once durable)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
