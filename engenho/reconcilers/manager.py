"""Runs the reconcilers of a node together, over shared informers, and stops them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engenho.reconcilers.controller import Controller
from engenho.reconcilers.informer import InformerFactory
from engenho.registry import Registry

__all__ = ["ControllerManager"]

_log = logging.getLogger("engenho.reconcilers")


class ControllerManager:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.informers = InformerFactory(registry)
        self.controllers: list[Controller] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, controller: Controller) -> Controller:
        """Add a controller built over :attr:`informers` (before :meth:`start`)."""
        self.controllers.append(controller)
        return controller

    def start(self) -> None:
        async def run_all() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.informers.run(), name="informers")
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
