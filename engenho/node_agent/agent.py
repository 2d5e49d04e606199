"""``NodeAgent``: one node's kubelet, over a KubeClient and a ContainerRuntime.

``await NodeAgent(client, runtime, AgentConfig(node_name=..., data_dir=...)).run()`` registers
the Node, keeps its status and Lease, watches the pods bound to it
(``fieldSelector=spec.nodeName=<node>``, all namespaces) and gives each pod a
:class:`~engenho.node_agent.worker.PodWorker`, all in one TaskGroup: cancelling ``run`` stops
everything the agent started (containers keep running, as they outlive a kubelet, and are
adopted by the next agent).

Besides the workers it runs the node's pod-address pool (from ``spec.podCIDR``, recovered
from the pods' statuses after a restart), a PLEG-like loop that turns the runtime's events
into container changes for the workers, and a periodic relist that catches what events
missed (exits, containers removed behind the agent's back, orphans of deleted pods).

The agent talks to the apiserver only through :class:`engenho.client.KubeClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attrs import field, frozen

from engenho.client import (
    ALL_NAMESPACES,
    ApiError,
    EventType,
    Informer,
    KubeClient,
    TransportError,
    WatchEvent,
)
from engenho.node_agent.addresses import AddressPool
from engenho.node_agent.backoff import BackOffPolicy
from engenho.node_agent.containers import LABEL_POD_UID
from engenho.node_agent.host import HostFacts, read_host_facts
from engenho.node_agent.node import NodeIdentity, NodeReporter
from engenho.node_agent.recording import EventRecorder, ObjectReference
from engenho.node_agent.runtime import (
    ContainerNotFoundError,
    ContainerRuntime,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    SandboxStatus,
)
from engenho.node_agent.sources import Sources
from engenho.node_agent.worker import PodWorker, is_terminal

__all__ = ["AgentConfig", "ContainerLocation", "NodeAgent", "lease_renew_interval"]

_log = logging.getLogger("engenho.node_agent")
Obj = dict[str, Any]


def lease_renew_interval(duration_seconds: int) -> float:
    """Upstream's kubelet renews its Lease every quarter of the Lease's duration."""
    return duration_seconds * 0.25


@frozen
class AgentConfig:
    """How one node agent behaves. Defaults are upstream's kubelet defaults."""

    node_name: str
    data_dir: Path
    """The agent's own directory (``DATA_DIR/node``): pod directories and container logs."""
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    capacity: Mapping[str, str] = field(factory=dict)
    """Overrides of detected capacity (``cpu``, ``memory``, ``ephemeral-storage``, ``pods``)."""
    host_path_allowlist: tuple[str, ...] = ()
    node_ip: str | None = None
    cluster_dns: str | None = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    back_off: BackOffPolicy = field(factory=BackOffPolicy)
    min_grace: float = 2.0
    """Upstream's minimumGracePeriodInSeconds: a kill waits at least this long."""
    relist_period: float = 10.0
    status_update_every: float = 10.0
    status_report_every: float = 300.0
    lease_renew_every: float = 10.0
    lease_duration: int = 40
    kubelet_port: int = 10250
    simulated: bool = False
    """A simulated node (``--simulate-nodes``): identity made up, host pressure ignored."""


@frozen
class ContainerLocation:
    """Where one container instance of a pod is (for the logs and exec endpoints)."""

    namespace: str
    pod: str
    uid: str
    container: str
    container_id: str
    """The runtime's id (for ``exec``)."""
    runtime: str
    log_path: Path
    running: bool


class NodeAgent:
    """One node (see the module docstring). ``sources`` and ``recorder`` may be shared
    between agents of one process (simulated nodes); ``facts`` replaces the host's."""

    def __init__(
        self,
        client: KubeClient,
        runtime: ContainerRuntime,
        config: AgentConfig,
        *,
        sources: Sources | None = None,
        recorder: EventRecorder | None = None,
        facts: HostFacts | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.name = config.node_name
        self._own_sources = sources is None
        self.sources = sources or Sources(client)
        self._own_recorder = recorder is None
        self.recorder = recorder or EventRecorder(client)
        self._facts = facts
        self._clock = clock or (lambda: datetime.now(UTC))
        self.logs_dir = config.data_dir / "logs"
        self.pods_dir = config.data_dir / "pods"
        self.workers: dict[str, PodWorker] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._pool: AddressPool | None = None
        self._pods_synced = False
        self._network = asyncio.Event()
        self._adoptable: dict[str, tuple[list[ContainerStatus], SandboxStatus | None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._informer: Informer[Obj] | None = None
        self._dns_checked: tuple[float, bool] | None = None
        self.accepting = asyncio.Event()
        """Set once pod events can be handed to the agent (registered, adoptable loaded)."""
        self.ready = asyncio.Event()
        """Set once the node is registered and its pods are listed."""
        self.reporter: NodeReporter | None = None

    # ------------------------------------------------------------------ what workers use

    def now(self) -> datetime:
        return self._clock()

    @property
    def facts(self) -> HostFacts:
        assert self._facts is not None
        return self._facts

    @property
    def host_ips(self) -> tuple[str, ...]:
        return (self.facts.internal_ip,)

    def allocatable(self) -> dict[str, str]:
        node = self.reporter.node if self.reporter is not None else {}
        return dict((node.get("status") or {}).get("allocatable") or {})

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    def address_pool(self) -> AddressPool | None:
        """The pod-address pool, once the node has a pod CIDR and the addresses its pods
        hold have been claimed back."""
        return self._pool if self._network.is_set() else None

    async def cluster_dns_served(self) -> bool:
        """Whether some Service has the cluster DNS address (checked every 30 s)."""
        loop = asyncio.get_running_loop()
        if self._dns_checked is not None and loop.time() - self._dns_checked[0] < 30:
            return self._dns_checked[1]
        served = False
        try:
            services = await self.sources.services()
            served = any(
                (s.get("spec") or {}).get("clusterIP") == self.config.cluster_dns for s in services
            )
        except (ApiError, TransportError, TimeoutError) as exc:
            _log.warning("services could not be read: %s", exc)
        self._dns_checked = (loop.time(), served)
        return served

    def record(self, involved: ObjectReference, type_: str, reason: str, message: str) -> None:
        self.recorder.record(involved, self.name, type_, reason, message)

    def _node_event(self, type_: str, reason: str, message: str) -> None:
        # Upstream's nodeRef names the node as its uid too.
        self.record(
            ObjectReference(kind="Node", name=self.name, uid=self.name), type_, reason, message
        )

    def sandbox_created(self, worker: PodWorker) -> None:
        """A worker made its sandbox (nothing to do today; relists find it by label)."""

    # ------------------------------------------------------------------ running

    async def run(self, *, feeds: bool = True) -> None:
        """Run the node until cancelled. With ``feeds=False`` the caller hands pod and node
        changes in (:meth:`on_pod_event`, :meth:`on_node`, :meth:`pods_synced`), as the
        simulated fleet does with one shared watch."""
        if self._facts is None:
            self._facts = await asyncio.to_thread(
                read_host_facts, self.config.data_dir, self.config.node_ip
            )
        facts = self._facts
        info = await self.runtime.info()
        scheme = {"oci": "crun", "wasm": "wasmtime"}.get(info.name, info.name)
        version = info.version.removeprefix(f"{scheme} ")  # "crun 1.8.1" -> "1.8.1"
        identity = NodeIdentity(
            name=self.name,
            runtime_version=f"{scheme}://{version}",
            labels=self.config.labels,
            taints=self.config.taints,
            capacity=self.config.capacity,
            kubelet_port=self.config.kubelet_port,
        )
        live = not self.config.simulated

        def current_facts() -> HostFacts:
            return read_host_facts(self.config.data_dir, self.config.node_ip) if live else facts

        self.reporter = NodeReporter(
            self.client,
            identity,
            current_facts if live else (lambda: facts),
            update_every=self.config.status_update_every,
            report_every=self.config.status_report_every,
            lease_duration=self.config.lease_duration,
            renew_every=self.config.lease_renew_every,
            clock=self._clock,
            on_event=self._node_event,
        )
        for note in info.notes:
            _log.info("node %s, runtime %s: %s", self.name, info.name, note)
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                if self._own_recorder:
                    group.create_task(self.recorder.run(), name=f"{self.name}: events")
                await self.reporter.register()
                self._node_event("Normal", "Starting", "Starting kubelet.")
                group.create_task(self.reporter.run_status(), name=f"{self.name}: node status")
                group.create_task(self.reporter.run_lease(), name=f"{self.name}: lease")
                self.on_node(self.reporter.node)
                await self._load_adoptable()
                self.accepting.set()
                if feeds:
                    group.create_task(self._watch_node(), name=f"{self.name}: node watch")
                    informer: Informer[Obj] = self.client.informer(
                        "pods",
                        namespace=ALL_NAMESPACES,
                        field_selector=f"spec.nodeName={self.name}",
                    )
                    self._informer = informer
                    await informer.add_handler(self.on_pod_event)
                    informer.start()
                    await informer.wait_synced()
                    self.pods_synced()
                group.create_task(self._runtime_events(), name=f"{self.name}: runtime events")
                group.create_task(self._relist_loop(), name=f"{self.name}: relist")
        finally:
            self._group = None
            if self._informer is not None:
                with contextlib.suppress(Exception):
                    await self._informer.stop()
            if self._own_sources:
                await self.sources.close()

    async def _load_adoptable(self) -> None:
        """What the runtime holds from before (an agent restart), by pod uid."""
        try:
            sandboxes = await self.runtime.list_sandboxes()
            containers = await self.runtime.list_containers()
        except ContainerRuntimeError as exc:
            _log.warning("node %s: the runtime could not list what it holds: %s", self.name, exc)
            return
        for sandbox in sandboxes:
            uid = sandbox.config.uid
            self._adoptable.setdefault(uid, ([], None))
            self._adoptable[uid] = (self._adoptable[uid][0], sandbox)
        for status in containers:
            owner = status.labels.get(LABEL_POD_UID)
            if owner:
                self._adoptable.setdefault(owner, ([], None))[0].append(status)
        if self._adoptable:
            _log.info(
                "node %s: the runtime holds containers of %d pods: adopting them",
                self.name,
                len(self._adoptable),
            )

    # ------------------------------------------------------------------ feeds

    def on_pod_event(self, event: WatchEvent[Obj]) -> None:
        pod = event.object
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        key = (str(meta.get("namespace")), str(meta.get("name")))
        worker = self.workers.get(uid)
        if event.type is EventType.DELETED:
            if worker is not None:
                worker.removed()
            return
        if worker is not None:
            worker.update(pod)
            return
        adopted, sandbox = self._adoptable.pop(uid, ([], None))
        worker = PodWorker(self, pod, adopted=adopted, sandbox=sandbox)
        self.workers[uid] = worker
        self._names[key] = uid
        assert self._group is not None, "pod events before the agent runs"
        supervising = self._supervise(worker)
        try:
            self._group.create_task(supervising, name=f"pod {key[0]}/{key[1]}")
        except RuntimeError:
            # The agent is stopping (its task group refuses new tasks): the next agent
            # adopts this pod. Close the coroutine, or asyncio reports it never awaited.
            supervising.close()
            del self.workers[uid]
            self._names.pop(key, None)

    def on_node(self, node: Obj) -> None:
        if not node:
            return
        if self.reporter is not None and node.get("metadata", {}).get("uid"):
            self.reporter.node = node
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr and self._pool is None:
            try:
                self._pool = AddressPool(str(cidr))
            except ValueError as exc:
                _log.error("node %s: %s", self.name, exc)
                return
            _log.info("node %s: pod CIDR %s", self.name, cidr)
            self._network_changed()
        elif cidr and self._pool is not None and str(self._pool.network) != str(cidr):
            _log.warning(
                "node %s: spec.podCIDR changed to %s; keeping %s until the agent restarts",
                self.name,
                cidr,
                self._pool.network,
            )

    def pods_synced(self) -> None:
        """The first list of the node's pods has been handed in."""
        self._pods_synced = True
        self._network_changed()
        self.ready.set()
        self._poke_all()

    def network_problem(self) -> str:
        if self._pods_synced and self._pool is None:
            return (
                f"network is not ready: node {self.name} has no spec.podCIDR yet "
                "(the node-ipam controller assigns it)"
            )
        return ""

    def _network_changed(self) -> None:
        if self._pool is None or not self._pods_synced or self._network.is_set():
            return
        # Claim back the addresses pods already hold before any new one is handed out.
        for uid, worker in self.workers.items():
            pod = worker.pod
            spec, status = pod.get("spec") or {}, pod.get("status") or {}
            if spec.get("hostNetwork") or is_terminal(pod):
                continue
            address = status.get("podIP")
            if worker.sandbox is not None:
                address = worker.sandbox.ip or address
            if address in self.host_ips:
                continue  # a pod the runtime put on the host's network
            if address and not self._pool.claim(uid, str(address)):
                _log.warning(
                    "pod %s/%s: address %s cannot be kept", worker.namespace, worker.name, address
                )
        self._network.set()
        self._poke_all()

    def _poke_all(self) -> None:
        for worker in self.workers.values():
            worker.update(worker.pod)

    async def _supervise(self, worker: PodWorker) -> None:
        """Run a worker; one that fails is logged and started again (one pod's trouble
        must not stop the node)."""
        uid = worker.uid
        try:
            while True:
                try:
                    await worker.run()
                except Exception:
                    _log.exception(
                        "pod %s/%s: worker failed; restarting it", worker.namespace, worker.name
                    )
                else:
                    return
                await asyncio.sleep(1.0)
                adopted = [
                    s
                    for s in await self.runtime.list_containers()
                    if s.labels.get(LABEL_POD_UID) == uid
                ]
                sandbox = next(
                    (s for s in await self.runtime.list_sandboxes() if s.config.uid == uid), None
                )
                replacement = PodWorker(self, worker.pod, adopted=adopted, sandbox=sandbox)
                if worker.gone:
                    replacement.removed()
                worker = replacement
                self.workers[uid] = worker
        finally:
            if self.workers.get(uid) is worker:
                del self.workers[uid]
                key = (worker.namespace, worker.name)
                if self._names.get(key) == uid:
                    del self._names[key]

    async def _watch_node(self) -> None:
        async with self.client.watch("nodes", name=self.name) as events:
            async for event in events:
                if event.type is not EventType.DELETED:
                    self.on_node(event.object)

    # ------------------------------------------------------------------ the runtime

    def _dispatch(self, status: ContainerStatus) -> None:
        uid = status.labels.get(LABEL_POD_UID)
        worker = self.workers.get(uid or "")
        if worker is not None:
            worker.container_changed(status)

    async def _runtime_events(self) -> None:
        events = self.runtime.events()
        try:
            async for event in events:
                if event.relist:
                    await self.relist()
                    continue
                if not event.container_id:
                    continue
                try:
                    status = await self.runtime.container_status(event.container_id)
                except ContainerNotFoundError:
                    continue
                except ContainerRuntimeError as exc:
                    _log.warning("node %s: container status: %s", self.name, exc)
                    continue
                self._dispatch(status)
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()

    async def relist(self) -> None:
        """Compare what the runtime holds with the workers (upstream's PLEG relist)."""
        try:
            containers = await self.runtime.list_containers()
        except ContainerRuntimeError as exc:
            _log.warning("node %s: relist failed: %s", self.name, exc)
            return
        by_pod: dict[str, dict[str, ContainerStatus]] = {}
        for status in containers:
            uid = status.labels.get(LABEL_POD_UID) or ""
            by_pod.setdefault(uid, {})[status.id] = status
        for uid, worker in list(self.workers.items()):
            worker.relisted(by_pod.get(uid, {}))
        if not self._pods_synced:
            return
        # Orphans: what belongs to no pod this node has (removed while the agent was away).
        for uid, statuses in by_pod.items():
            if uid and uid not in self.workers and uid not in self._adoptable:
                for status in statuses.values():
                    with contextlib.suppress(ContainerRuntimeError):
                        await self.runtime.remove_container(status.id)
        try:
            sandboxes = await self.runtime.list_sandboxes()
        except ContainerRuntimeError:
            return
        for sandbox in sandboxes:
            if sandbox.config.uid not in self.workers:
                _log.info("node %s: removing the sandbox of a pod that is gone", self.name)
                with contextlib.suppress(ContainerRuntimeError):
                    await self.runtime.remove_sandbox(sandbox.id)

    async def _relist_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.relist_period)
            await self.relist()

    # ------------------------------------------------------------------ logs and exec

    def locate(
        self, namespace: str, pod: str, container: str | None = None, *, previous: bool = False
    ) -> ContainerLocation | None:
        """Where a container of a pod running here is: its runtime id and log file (the
        previous instance's with ``previous``). ``container`` may be omitted for a pod with
        one container. None when there is no such instance."""
        uid = self._names.get((namespace, pod))
        worker = self.workers.get(uid or "")
        if worker is None:
            return None
        if container is None:
            names = [c.get("name") for c in (worker.pod.get("spec") or {}).get("containers") or []]
            if len(names) != 1:
                return None
            container = str(names[0])
        instances = worker.instances.get(container) or []
        index = -2 if previous else -1
        if len(instances) < (2 if previous else 1):
            return None
        status = instances[index]
        return ContainerLocation(
            namespace=namespace,
            pod=pod,
            uid=worker.uid,
            container=container,
            container_id=status.id,
            runtime=self.runtime.name,
            log_path=status.log_path,
            running=status.state is ContainerState.RUNNING,
        )

    # ``ServedPods`` (engenho.node_agent.serving): what the logs and exec endpoint reads.

    def pod(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The pod as the agent last saw or wrote it; None when it runs no such pod."""
        worker = self.workers.get(self._names.get((namespace, name)) or "")
        return worker.pod if worker is not None else None

    def pods(self) -> list[Mapping[str, Any]]:
        return [worker.pod for worker in self.workers.values()]

    def log_path(self, namespace: str, name: str, container: str, *, previous: bool) -> Path | None:
        location = self.locate(namespace, name, container, previous=previous)
        return location.log_path if location is not None else None
