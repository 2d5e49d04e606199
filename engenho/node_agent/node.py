"""The node's object, its status and its Lease, as the kubelet keeps them.

- **Registration.** ``POST /api/v1/nodes`` with the labels (``kubernetes.io/hostname``,
  ``kubernetes.io/os``, ``kubernetes.io/arch`` and their ``beta.`` forms, plus
  ``--node-label``), the taints given with ``--node-taint``, capacity and allocatable from the
  host (config overrides win), addresses and ``nodeInfo``. A node that already exists is
  kept, with any label the agent sets that it lacks patched in.
- **Status.** Every ``update_every`` seconds (upstream's nodeStatusUpdateFrequency, 10 s) the
  agent computes the status and patches ``nodes/<name>/status`` (strategic merge) when it
  differs from what it last reported, or when ``report_every`` (nodeStatusReportFrequency,
  5 min) has passed; conditions keep their transition time while their status holds.
- **Lease.** ``kube-node-lease/<name>``, ``holderIdentity`` the node, ``leaseDurationSeconds``
  40, renewed every 10 s with a compare-and-swap update (created when missing, read again on
  a conflict), owned by the Node so that it goes with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from attrs import field, frozen

from engenho import __version__
from engenho.client import (
    AlreadyExistsError,
    ApiError,
    ConflictError,
    KubeClient,
    NotFoundError,
    PatchType,
    TransportError,
)
from engenho.node_agent.host import HostFacts
from engenho.schema.quantity import Quantity, QuantityFormat

__all__ = [
    "KUBELET_VERSION",
    "LEASE_NAMESPACE",
    "NodeIdentity",
    "NodeReporter",
    "node_conditions",
    "node_object",
    "node_resources",
    "node_status",
    "parse_label",
    "parse_taint",
]

_log = logging.getLogger("engenho.node_agent")

KUBELET_VERSION = f"v1.29.0-engenho.{__version__}"
"""What ``nodeInfo.kubeletVersion`` says: the Kubernetes minor engenho follows, then ours."""
LEASE_NAMESPACE = "kube-node-lease"
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_CONDITION_EVENTS = {
    ("MemoryPressure", "False"): "NodeHasSufficientMemory",
    ("MemoryPressure", "True"): "NodeHasInsufficientMemory",
    ("DiskPressure", "False"): "NodeHasNoDiskPressure",
    ("DiskPressure", "True"): "NodeHasDiskPressure",
    ("PIDPressure", "False"): "NodeHasSufficientPID",
    ("PIDPressure", "True"): "NodeHasInsufficientPID",
    ("Ready", "True"): "NodeReady",
    ("Ready", "False"): "NodeNotReady",
}
_MEMORY_RESERVE = Quantity.parse("100Mi")  # evictionHard memory.available<100Mi
_STORAGE_RESERVE = Fraction(1, 10)  # evictionHard nodefs.available<10%


def parse_label(text: str) -> tuple[str, str]:
    """``key=value`` (``--node-label``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"a node label is key=value, not {text!r}")
    return key, value


def parse_taint(text: str) -> dict[str, str]:
    """``key=value:Effect`` or ``key:Effect`` (``--node-taint``, upstream's
    ``--register-with-taints`` syntax)."""
    spec, sep, effect = text.rpartition(":")
    if not sep or effect not in _TAINT_EFFECTS:
        raise ValueError(
            f"a node taint is key=value:Effect with Effect one of {', '.join(_TAINT_EFFECTS)}, "
            f"not {text!r}"
        )
    key, _, value = spec.partition("=")
    if not key:
        raise ValueError(f"a node taint needs a key: {text!r}")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


@frozen
class NodeIdentity:
    """What makes a node this node: its name and what it declares about itself."""

    name: str
    runtime_version: str
    """``crun://1.14``, ``fake://1``: ``nodeInfo.containerRuntimeVersion``."""
    labels: Mapping[str, str] = field(factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    capacity: Mapping[str, str] = field(factory=dict)
    """Overrides of detected capacity: ``cpu``, ``memory``, ``ephemeral-storage``, ``pods``."""
    kubelet_port: int = 10250


def _binary(nbytes: int) -> Quantity:
    return Quantity.parse(f"{nbytes // 1024}Ki")


def node_resources(
    facts: HostFacts, overrides: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """``(capacity, allocatable)``. Allocatable keeps back upstream's hard eviction
    thresholds (100Mi of memory, 10% of the node filesystem)."""
    cpu = Quantity.parse(str(overrides.get("cpu") or facts.cpus))
    memory = (
        Quantity.parse(str(overrides["memory"]))
        if overrides.get("memory")
        else _binary(facts.memory_bytes)
    )
    storage = (
        Quantity.parse(str(overrides["ephemeral-storage"]))
        if overrides.get("ephemeral-storage")
        else _binary(facts.storage_bytes)
    )
    pods = str(overrides.get("pods") or 110)
    capacity = {
        "cpu": cpu.canonical(),
        "ephemeral-storage": storage.canonical(),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory.canonical(),
        "pods": pods,
    }
    zero = Quantity.parse("0")
    allocatable_memory = max(memory - _MEMORY_RESERVE, zero)
    allocatable_storage = Quantity.from_fraction(
        int(storage.as_fraction() * (1 - _STORAGE_RESERVE)), QuantityFormat.DECIMAL_SI
    )
    allocatable = {
        **capacity,
        "ephemeral-storage": allocatable_storage.canonical(),
        "memory": allocatable_memory.canonical(),
    }
    return capacity, allocatable


def _labels(identity: NodeIdentity, facts: HostFacts) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.architecture,
        "kubernetes.io/hostname": identity.name,
        "kubernetes.io/os": "linux",
        **identity.labels,
    }


def node_object(identity: NodeIdentity, facts: HostFacts, now: datetime) -> dict[str, Any]:
    """The Node to register."""
    spec: dict[str, Any] = {}
    if identity.taints:
        spec["taints"] = [dict(t) for t in identity.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": identity.name,
            "labels": _labels(identity, facts),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": spec,
        "status": node_status(identity, facts, {}, now),
    }


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_conditions(
    facts: HostFacts, *, ready: tuple[bool, str] = (True, "")
) -> list[tuple[str, str, str, str]]:
    """``(type, status, reason, message)`` in upstream's order. Pressure follows upstream's
    default hard eviction thresholds when the host's figures are known."""
    memory_low = (
        facts.memory_available_bytes is not None
        and facts.memory_available_bytes < _MEMORY_RESERVE.value()
    )
    disk_low = (
        facts.storage_available_bytes is not None
        and facts.storage_bytes > 0
        and Fraction(facts.storage_available_bytes, facts.storage_bytes) < _STORAGE_RESERVE
    )
    is_ready, why = ready
    return [
        (
            (
                "MemoryPressure",
                "True",
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
            if memory_low
            else (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        ),
        (
            ("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
            if disk_low
            else (
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            )
        ),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        (
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status")
            if is_ready
            else ("Ready", "False", "KubeletNotReady", why)
        ),
    ]


def node_status(
    identity: NodeIdentity,
    facts: HostFacts,
    previous: Mapping[str, Mapping[str, Any]],
    now: datetime,
    *,
    ready: tuple[bool, str] = (True, ""),
) -> dict[str, Any]:
    """The node's status; ``previous`` (conditions by type) keeps transition times."""
    capacity, allocatable = node_resources(facts, identity.capacity)
    conditions = []
    for kind, status, reason, message in node_conditions(facts, ready=ready):
        old = previous.get(kind) or {}
        same = old.get("status") == status and old.get("lastTransitionTime")
        conditions.append(
            {
                "type": kind,
                "status": status,
                "lastHeartbeatTime": _time(now),
                "lastTransitionTime": old["lastTransitionTime"] if same else _time(now),
                "reason": reason,
                "message": message,
            }
        )
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": facts.internal_ip},
            {"type": "Hostname", "address": facts.hostname},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": identity.kubelet_port}},
        "nodeInfo": {
            "architecture": facts.architecture,
            "bootID": facts.boot_id,
            "containerRuntimeVersion": identity.runtime_version,
            "kernelVersion": facts.kernel_version,
            "kubeProxyVersion": KUBELET_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "machineID": facts.machine_id,
            "operatingSystem": "linux",
            "osImage": facts.os_image,
            "systemUUID": facts.system_uuid,
        },
    }


def _without_heartbeats(status: Mapping[str, Any]) -> Any:
    copy = dict(status)
    copy["conditions"] = [
        {k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status["conditions"]
    ]
    return copy


def _conditions_differ(stored: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether the stored Node says something else than ``status`` would: the node-lifecycle
    controller marks a silent node's conditions Unknown, and a node that is back must say
    otherwise at once (upstream compares with the stored Node too), not at the next report."""
    have = {
        c.get("type"): (c.get("status"), c.get("reason"))
        for c in stored.get("conditions") or ()
        if isinstance(c, Mapping)
    }
    return any(have.get(c["type"]) != (c["status"], c.get("reason")) for c in status["conditions"])


class NodeReporter:
    """Registers the node, keeps its status and renews its Lease (see the module docs)."""

    def __init__(
        self,
        client: KubeClient,
        identity: NodeIdentity,
        facts: Callable[[], HostFacts],
        *,
        update_every: float = 10.0,
        report_every: float = 300.0,
        lease_duration: int = 40,
        renew_every: float = 10.0,
        clock: Callable[[], datetime] | None = None,
        on_event: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._client = client
        self._on_event = on_event
        self._announced: dict[str, str] = {}
        self.identity = identity
        self._facts = facts
        self._update_every = update_every
        self._report_every = report_every
        self._lease_duration = lease_duration
        self._renew_every = renew_every
        self._clock = clock or (lambda: datetime.now(UTC))
        self.node: dict[str, Any] = {}
        self.registered = asyncio.Event()
        self._reported: Any = None
        self._reported_at = 0.0
        self._lease: dict[str, Any] | None = None
        self.ready: tuple[bool, str] = (True, "")
        """What the Ready condition says; the agent sets it."""
        self._changed = asyncio.Event()
        self.lease_renewals = 0

    @property
    def name(self) -> str:
        return self.identity.name

    def status_changed(self) -> None:
        """Report now rather than at the next period (a condition changed)."""
        self._changed.set()

    # ------------------------------------------------------------------ registration

    async def register(self) -> dict[str, Any]:
        """Create the Node, or adopt the existing one; retried until it works."""
        delay = 0.2
        while True:
            try:
                node = await self._register_once()
            except (ApiError, TransportError) as exc:
                _log.warning("node %s: registration failed (%s); retrying", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)
                continue
            self.node = node
            self.registered.set()
            return node

    async def _register_once(self) -> dict[str, Any]:
        facts = self._facts()
        wanted = node_object(self.identity, facts, self._clock())
        try:
            node: dict[str, Any] = await self._client.create(wanted)
        except AlreadyExistsError:
            node = await self._client.get("nodes", self.name)
        else:
            _log.info("node %s registered", self.name)
            return node
        labels = (node.get("metadata") or {}).get("labels") or {}
        missing = {k: v for k, v in wanted["metadata"]["labels"].items() if labels.get(k) != v}
        if missing:
            node = await self._client.patch("nodes", self.name, {"metadata": {"labels": missing}})
        _log.info("node %s already registered: adopted", self.name)
        return node

    # ------------------------------------------------------------------ status

    async def report_status(self, *, force: bool = False) -> bool:
        """Patch the status if it changed (or ``force``); whether it was written."""
        previous = {
            str(c.get("type")): c for c in (self.node.get("status") or {}).get("conditions") or []
        }
        status = node_status(
            self.identity, self._facts(), previous, self._clock(), ready=self.ready
        )
        comparable = _without_heartbeats(status)
        due = asyncio.get_running_loop().time() - self._reported_at >= self._report_every
        stored = self.node.get("status") or {}
        if (
            not force
            and not due
            and comparable == self._reported
            and not _conditions_differ(stored, status)
        ):
            return False
        node = await self._client.patch(
            "nodes",
            self.name,
            {"status": status},
            patch_type=PatchType.STRATEGIC,
            subresource="status",
        )
        self.node = node
        self._reported = comparable
        self._reported_at = asyncio.get_running_loop().time()
        self._announce(status["conditions"])
        return True

    def _announce(self, conditions: list[dict[str, Any]]) -> None:
        """Upstream's node status events: ``Node <name> status is now: NodeReady`` and the
        like, when a condition is first reported or changes."""
        for condition in conditions:
            kind, status = condition["type"], condition["status"]
            if self._announced.get(kind) == status:
                continue
            self._announced[kind] = status
            reason = _CONDITION_EVENTS.get((kind, status))
            if reason is not None and self._on_event is not None:
                self._on_event("Normal", reason, f"Node {self.name} status is now: {reason}")

    async def run_status(self) -> None:
        await self.registered.wait()
        while True:
            try:
                await self.report_status()
            except NotFoundError:
                _log.warning("node %s is gone: registering it again", self.name)
                self._reported = None
                await self.register()
            except (ApiError, TransportError) as exc:
                _log.warning("node %s: status update failed: %s", self.name, exc)
            self._changed.clear()
            try:
                async with asyncio.timeout(self._update_every):
                    await self._changed.wait()
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ lease

    def _lease_body(self) -> dict[str, Any]:
        now = self._clock()
        owner = []
        uid = (self.node.get("metadata") or {}).get("uid")
        if uid:
            owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": uid}]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": LEASE_NAMESPACE,
                **({"ownerReferences": owner} if owner else {}),
            },
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": self._lease_duration,
                "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        }

    async def renew_lease(self) -> dict[str, Any]:
        """One renewal: update the Lease held, else read or create it."""
        if self._lease is None:
            try:
                self._lease = await self._client.get(
                    "leases.coordination.k8s.io", self.name, namespace=LEASE_NAMESPACE
                )
            except NotFoundError:
                lease: dict[str, Any] = await self._client.create(self._lease_body())
                self._lease = lease
                self.lease_renewals += 1
                return lease
        body = self._lease_body()
        updated = dict(self._lease)
        updated["spec"] = {**(self._lease.get("spec") or {}), **body["spec"]}
        meta = dict(updated.get("metadata") or {})
        if "ownerReferences" in body["metadata"] and not meta.get("ownerReferences"):
            meta["ownerReferences"] = body["metadata"]["ownerReferences"]
        updated["metadata"] = meta
        try:
            self._lease = await self._client.replace(updated)
        except (ConflictError, NotFoundError):
            self._lease = None
            raise
        self.lease_renewals += 1
        return self._lease

    async def run_lease(self) -> None:
        await self.registered.wait()
        delay = 0.2
        while True:
            try:
                await self.renew_lease()
            except (ApiError, TransportError) as exc:
                if not isinstance(exc, ConflictError | NotFoundError):
                    _log.warning("node %s: lease renewal failed: %s", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)
                continue
            delay = 0.2
            await asyncio.sleep(self._renew_every)
