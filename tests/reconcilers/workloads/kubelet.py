"""A stand-in for the node agent in workload tests (there is none yet): it binds pending pods
to fake nodes round-robin (``pods/binding``), reports them Running and Ready (or Running and
not Ready), and finishes the deletion of pods being deleted, as a kubelet would."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from engenho.log import Actor
from engenho.reconcilers import Controller, Source, object_key
from engenho.registry import ConflictError, DeleteOptions, NotFoundError, Registry, WatchEvent
from engenho.registry.naming import format_timestamp
from engenho.schema import CATALOGUE

PODS = CATALOGUE.get("", "v1", "pods")


def running_status(pod: dict[str, Any], *, ready: bool, now: datetime) -> dict[str, Any]:
    """The status a kubelet reports for a started pod, Ready or not."""
    stamp = format_timestamp(now)
    status = copy.deepcopy(pod.get("status") or {})
    flag = "True" if ready else "False"
    previous = {c.get("type"): c for c in status.get("conditions") or []}

    def condition(type_: str, value: str) -> dict[str, Any]:
        old = previous.get(type_)
        since = (
            old.get("lastTransitionTime", stamp) if old and old.get("status") == value else stamp
        )
        return {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": since}

    containers = (pod.get("spec") or {}).get("containers") or []
    status.update(
        {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.1",
            "startTime": status.get("startTime", stamp),
            "conditions": [
                condition("Initialized", "True"),
                condition("Ready", flag),
                condition("ContainersReady", flag),
                condition("PodScheduled", "True"),
            ],
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container.get("image", ""),
                    "imageID": f"fake://{container.get('image', '')}",
                    "containerID": f"fake://{container['name']}",
                    "ready": ready,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": status.get("startTime", stamp)}},
                }
                for container in containers
            ],
        }
    )
    return status


class FakeKubelet(Controller):
    name = "fake-kubelet"
    identity = Actor("system:node:fake", ("system:nodes", "system:authenticated"))

    def __init__(
        self,
        registry: Registry,
        *,
        nodes: Sequence[str] = ("node-0",),
        ready: bool = True,
        bind: bool = True,
        workers: int = 16,
    ) -> None:
        self.nodes = list(nodes)
        self.ready = ready
        self.bind = bind
        self._next = 0
        super().__init__(registry, workers=workers)

    def sources(self) -> list[Source]:
        def keys(event: WatchEvent) -> list[str]:
            if event.object is None or event.type == "DELETED":
                return []
            return [object_key(event.object)]

        return [Source(PODS, keys)]

    async def set(self, *, ready: bool | None = None, bind: bool | None = None) -> None:
        """Change how pods are treated from now on, and look at every pod again."""
        if ready is not None:
            self.ready = ready
        if bind is not None:
            self.bind = bind
        for pod in (await self.registry.list(PODS, None)).items:
            self.queue.add(object_key(pod))

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        try:
            pod = await self.registry.get(PODS, namespace, name)
        except NotFoundError:
            return
        obj = pod.object
        if obj["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(NotFoundError, ConflictError):
                await self.registry.delete(
                    self.context(),
                    PODS,
                    namespace,
                    name,
                    DeleteOptions(grace_period_seconds=0, precondition_uid=pod.uid),
                )
            return
        if not (obj.get("spec") or {}).get("nodeName"):
            if not self.bind:
                return
            node = self.nodes[self._next % len(self.nodes)]
            self._next += 1
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "uid": pod.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            with contextlib.suppress(NotFoundError, ConflictError):
                await self.registry.bind(self.context(), namespace, binding)
            return
        status = obj.get("status") or {}
        conditions: list[dict[str, Any]] = status.get("conditions") or []
        ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
        if status.get("phase") == "Running" and ready == ("True" if self.ready else "False"):
            return
        body = copy.deepcopy(obj)
        body["status"] = running_status(obj, ready=self.ready, now=datetime.now(UTC))
        try:
            await self.registry.update(
                self.context(), PODS, namespace, name, body, subresource="status"
            )
        except (NotFoundError, ConflictError):
            self.queue.add(key)
