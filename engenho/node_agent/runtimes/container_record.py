"""What every runtime (``fake``, ``oci``, ``wasm``) remembers of a container, and how it
turns that into the protocol's ``ContainerStatus`` and ``ContainerEvent``.

Slotted, with the exit event made only when someone waits: the fake runtime keeps 10,000 of
these in one process. Runtimes subclass it for what only they keep (a timetable, files on
disk) and set ``runtime``, the ``containerID`` scheme.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, TypeVar

from engenho.node_agent.runtime import (
    ContainerConfig,
    ContainerEvent,
    ContainerNotFoundError,
    ContainerState,
    ContainerStateError,
    ContainerStatus,
    exit_reason,
)

__all__ = ["ContainerRecord", "find_container"]

_Record = TypeVar("_Record", bound="ContainerRecord")


class ContainerRecord:
    runtime: ClassVar[str]
    """``fake``, ``oci``, ``wasm``: the status's runtime, the scheme of its containerID."""

    __slots__ = (
        "_exited",
        "config",
        "created_at",
        "exit_code",
        "finished_at",
        "id",
        "image_ref",
        "message",
        "pid",
        "reason",
        "sandbox_id",
        "started_at",
        "state",
        "unenforced",
    )

    def __init__(
        self,
        container_id: str,
        sandbox_id: str,
        config: ContainerConfig,
        image_ref: str,
        created_at: datetime,
    ) -> None:
        self.id = container_id
        self.sandbox_id = sandbox_id
        self.config = config
        self.image_ref = image_ref
        self.created_at = created_at
        self.state = ContainerState.CREATED
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.exit_code: int | None = None
        self.reason = ""
        self.message = ""
        self.pid: int | None = None
        self.unenforced: tuple[str, ...] = ()
        """Limits asked for but not enforced on this host (``cpu``, ``memory``)."""
        self._exited: asyncio.Event | None = None

    def require_created(self) -> None:
        """Refuse to start a container twice (or one that exited)."""
        if self.state is not ContainerState.CREATED:
            raise ContainerStateError(f"container {self.id} is {self.state.value}, not created")

    def finish(
        self,
        exit_code: int,
        at: datetime,
        *,
        reason: str = "",
        message: str = "",
        oom_killed: bool = False,
    ) -> None:
        """The container has exited; without a ``reason``, the CRI's for the exit code."""
        self.state = ContainerState.EXITED
        self.exit_code = exit_code
        self.reason = reason or exit_reason(exit_code, oom_killed=oom_killed)
        self.message = message
        self.finished_at = at
        self.pid = None
        if self._exited is not None:
            self._exited.set()

    async def wait_exited(self) -> None:
        if self.state is ContainerState.EXITED:
            return
        if self._exited is None:
            self._exited = asyncio.Event()
        await self._exited.wait()

    def event(self, at: datetime) -> ContainerEvent:
        return ContainerEvent(self.id, self.sandbox_id, self.state, at)

    def status(self) -> ContainerStatus:
        config = self.config
        return ContainerStatus(
            id=self.id,
            sandbox_id=self.sandbox_id,
            runtime=self.runtime,
            name=config.name,
            attempt=config.attempt,
            state=self.state,
            image=config.image,
            image_ref=self.image_ref,
            created_at=self.created_at,
            log_path=config.log_path,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_code=self.exit_code,
            reason=self.reason,
            message=self.message,
            pid=self.pid,
            labels=config.labels,
            annotations=config.annotations,
            unenforced=self.unenforced,
        )


def find_container(containers: Mapping[str, _Record], container_id: str) -> _Record:
    container = containers.get(container_id)
    if container is None:
        raise ContainerNotFoundError(f"container {container_id!r} not found")
    return container
