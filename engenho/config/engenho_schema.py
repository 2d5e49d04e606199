"""EngenhoConfig: the runtime configuration of ``engenho server`` (and, later, ``agent``).

Keys are snake_case. Each section reports its ``problems()`` (paths relative to itself) and
EngenhoConfig checks the whole tree when constructed, so one that exists is valid. Which tier
supplied each value is not part of the record: ``resolving`` keeps it beside it.

``None`` is a real setting, never "inherit": ``server.database_url: null`` means SQLite in the
data directory, ``controllers.<name>.resync_interval_seconds: null`` means no periodic resync.
A zero is a zero, refused where it makes no sense.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Protocol

from attrs import frozen

from engenho.config.errors import InvalidConfigError
from engenho.config.names import (
    dns_label_problem,
    dns_subdomain_problem,
    host_problem,
    quantity_problem,
)
from engenho.config.networks import (
    IPAddress,
    IPNetwork,
    ListenAddress,
    PortRange,
    cluster_dns_problem,
    port_range_problem,
    service_cidr_problem,
)
from engenho.config.problems import Problem

__all__ = [
    "API_LISTEN",
    "CLUSTER_CIDR",
    "CLUSTER_DNS",
    "NODE_PORT_RANGE",
    "REPLICATION_LISTEN",
    "SERVICE_CIDR",
    "AuditSection",
    "Capacity",
    "ClusterSection",
    "ControllerSettings",
    "EngenhoConfig",
    "NetworkingSection",
    "NodeAgentSection",
    "ReplicationSection",
    "Runtime",
    "SchedulerSection",
    "SchedulingStrategy",
    "ServerSection",
    "TlsSection",
]


API_LISTEN = ListenAddress("127.0.0.1", 6443)
REPLICATION_LISTEN = ListenAddress("127.0.0.1", 2380)
SERVICE_CIDR = IPv4Network("10.96.0.0/12")
"""kube-apiserver's default service range."""
CLUSTER_CIDR = IPv4Network("10.42.0.0/16")
"""The pod range node IPAM carves per-node /24s from (k3s's default, as the issue names)."""
CLUSTER_DNS = IPv4Address("10.96.0.10")
NODE_PORT_RANGE = PortRange(30000, 32767)


class Runtime(enum.Enum):
    """How the node agent runs pods (engenho.server's ``RUNTIMES``)."""

    FAKE = "fake"
    OCI = "oci"
    WASM = "wasm"
    NONE = "none"


class SchedulingStrategy(enum.Enum):
    LEAST_ALLOCATED = "least_allocated"
    """Spread: prefer the node with the most room left (kube-scheduler's default scoring)."""
    MOST_ALLOCATED = "most_allocated"
    """Bin-pack: prefer the fullest node that still fits."""


class _Section(Protocol):
    def problems(self) -> list[Problem]: ...


def _check(problems: list[Problem], path: str, message: str | None) -> None:
    if message is not None:
        problems.append(Problem(path, message))


def _positive(problems: list[Problem], path: str, value: float) -> None:
    if value <= 0:
        problems.append(Problem(path, f"{value} must be greater than zero"))


@frozen
class ClusterSection:
    name: str = "engenho"

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        _check(problems, "name", dns_label_problem(self.name))
        return problems


@frozen
class TlsSection:
    """The serving certificate. Unset files are issued by the cluster CA under DATA_DIR/pki."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    """CA whose client certificates authenticate users, besides the cluster CA."""
    sans: tuple[str, ...] = ()
    """Extra names and addresses on an issued serving certificate."""

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if (self.cert_file is None) != (self.key_file is None):
            given, missing = (
                ("cert_file", "key_file") if self.key_file is None else ("key_file", "cert_file")
            )
            problems.append(Problem(given, f"is set without {missing}: set both or neither"))
        for index, name in enumerate(self.sans):
            _check(problems, f"sans[{index}]", host_problem(name))
        return problems


@frozen
class ServerSection:
    data_dir: Path
    listen: ListenAddress = API_LISTEN
    database_url: str | None = None
    """SQLAlchemy URL of the projections; None: SQLite at DATA_DIR/projections.db."""
    tls: TlsSection = TlsSection()

    def problems(self) -> list[Problem]:
        problems = [p.under("tls") for p in self.tls.problems()]
        url = self.database_url
        if url is not None and "://" not in url:
            problems.append(
                Problem("database_url", f"{url!r} is not a URL such as postgresql://host/db")
            )
        return problems


@frozen
class ReplicationSection:
    """The control-plane Raft group. One voter by default: a single node is a group of one."""

    control_plane_size: int = 1
    listen: ListenAddress = REPLICATION_LISTEN
    peers: tuple[ListenAddress, ...] = ()
    """Other control-plane nodes to reach at start; gossip finds the rest."""
    heartbeat_interval_seconds: float = 0.1
    election_timeout_seconds: float = 1.0
    gossip_interval_seconds: float = 1.0
    gossip_suspicion_threshold: float = 8.0
    """Phi-accrual level above which a silent member is suspected (Cassandra's default)."""

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        size = self.control_plane_size
        if size < 1 or size % 2 == 0:
            problems.append(
                Problem(
                    "control_plane_size",
                    f"{size} must be odd and at least 1: an even group tolerates no more "
                    "failures than the odd one below it",
                )
            )
        if size > 1 and not self.peers:
            problems.append(
                Problem("control_plane_size", f"{size} needs at least one peer in peers")
            )
        for index, peer in enumerate(self.peers):
            if peer in self.peers[:index]:
                problems.append(Problem(f"peers[{index}]", f"{peer} is repeated"))
            if peer == self.listen:
                problems.append(Problem(f"peers[{index}]", f"{peer} is this node's own listen"))
        for name in ("heartbeat_interval_seconds", "gossip_interval_seconds"):
            _positive(problems, name, getattr(self, name))
        _positive(problems, "gossip_suspicion_threshold", self.gossip_suspicion_threshold)
        if self.election_timeout_seconds < 5 * self.heartbeat_interval_seconds:
            problems.append(
                Problem(
                    "election_timeout_seconds",
                    f"{self.election_timeout_seconds} must be at least five heartbeat intervals "
                    f"({5 * self.heartbeat_interval_seconds:g}), or followers start elections "
                    "while the leader is healthy",
                )
            )
        return problems


@frozen
class SchedulerSection:
    profiles: tuple[str, ...] = ("default-scheduler",)
    """The ``spec.schedulerName`` values this scheduler serves."""
    strategy: SchedulingStrategy = SchedulingStrategy.LEAST_ALLOCATED

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not self.profiles:
            problems.append(
                Problem(
                    "profiles", "needs at least one name; disable controllers.scheduler instead"
                )
            )
        for index, name in enumerate(self.profiles):
            _check(problems, f"profiles[{index}]", dns_subdomain_problem(name))
            if name in self.profiles[:index]:
                problems.append(Problem(f"profiles[{index}]", f"{name} is repeated"))
        return problems


@frozen
class NodeLifecycleSection:
    """kube-controller-manager's node lifecycle flags, with their defaults."""

    node_monitor_grace_period_seconds: float = 40.0
    """How long a Node may go without a heartbeat before it is Unknown (and tainted)."""
    node_startup_grace_period_seconds: float = 60.0
    node_monitor_period_seconds: float = 5.0
    node_eviction_rate: float = 0.1
    """Nodes per second whose pods are evicted, while the zone is healthy."""

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        _positive(
            problems, "node_monitor_grace_period_seconds", self.node_monitor_grace_period_seconds
        )
        _positive(
            problems, "node_startup_grace_period_seconds", self.node_startup_grace_period_seconds
        )
        _positive(problems, "node_monitor_period_seconds", self.node_monitor_period_seconds)
        _positive(problems, "node_eviction_rate", self.node_eviction_rate)
        if self.node_monitor_period_seconds >= self.node_monitor_grace_period_seconds:
            problems.append(
                Problem(
                    "node_monitor_period_seconds",
                    f"{self.node_monitor_period_seconds} must be less than "
                    f"node_monitor_grace_period_seconds ({self.node_monitor_grace_period_seconds})",
                )
            )
        return problems


@frozen
class ControllerSettings:
    enabled: bool
    workers: int
    resync_interval_seconds: float | None
    """None: no periodic resync; changes alone trigger the controller."""

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.workers < 1:
            problems.append(Problem("workers", f"{self.workers} must be at least 1"))
        if self.resync_interval_seconds is not None:
            _positive(problems, "resync_interval_seconds", self.resync_interval_seconds)
        return problems


@frozen
class Capacity:
    """Overrides of what the node agent detects and reports as the node's capacity."""

    cpu: str | None = None
    memory: str | None = None
    ephemeral_storage: str | None = None
    pods: int | None = None

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        for name in ("cpu", "memory", "ephemeral_storage"):
            value = getattr(self, name)
            if value is not None:
                _check(problems, name, quantity_problem(value))
        if self.pods is not None and self.pods < 1:
            problems.append(Problem("pods", f"{self.pods} must be at least 1"))
        return problems


@frozen
class NodeAgentSection:
    node_name: str
    runtime: Runtime = Runtime.OCI
    """The embedded node's runtime; oci gives way to fake, saying why, where crun cannot run."""
    capacity: Capacity = Capacity()
    host_path_allowlist: tuple[str, ...] = ()
    """Directories (and what is under them) pods may mount as hostPath; empty denies all."""
    container_log_max_size: str = "10Mi"
    container_log_max_files: int = 5
    """The kubelet's containerLogMaxSize and containerLogMaxFiles defaults."""
    node_status_update_frequency_seconds: float = 10.0
    node_lease_duration_seconds: int = 40
    """The kubelet's nodeStatusUpdateFrequency and nodeLeaseDurationSeconds; the Lease is
    renewed every quarter of its duration, as upstream's."""

    def problems(self) -> list[Problem]:
        problems = [p.under("capacity") for p in self.capacity.problems()]
        _check(problems, "node_name", dns_subdomain_problem(self.node_name))
        for index, path in enumerate(self.host_path_allowlist):
            where = f"host_path_allowlist[{index}]"
            if not path.startswith("/"):
                problems.append(Problem(where, f"{path!r} must be an absolute path"))
            elif posixpath.normpath(path) != path and path != "/":
                problems.append(
                    Problem(where, f"{path!r} must be normalised ({posixpath.normpath(path)})")
                )
            if path in self.host_path_allowlist[:index]:
                problems.append(Problem(where, f"{path!r} is repeated"))
        _check(problems, "container_log_max_size", quantity_problem(self.container_log_max_size))
        _positive(
            problems,
            "node_status_update_frequency_seconds",
            self.node_status_update_frequency_seconds,
        )
        if self.node_lease_duration_seconds < 1:
            problems.append(
                Problem(
                    "node_lease_duration_seconds",
                    f"{self.node_lease_duration_seconds} must be at least 1",
                )
            )
        if self.container_log_max_files < 2:
            problems.append(
                Problem(
                    "container_log_max_files",
                    f"{self.container_log_max_files} must be at least 2 (the live file and "
                    "one rotated)",
                )
            )
        return problems


@frozen
class NetworkingSection:
    service_cidr: IPNetwork = SERVICE_CIDR
    cluster_cidr: IPNetwork = CLUSTER_CIDR
    """Pod addresses; node-ipam gives each node a slice of it."""
    cluster_dns: IPAddress = CLUSTER_DNS
    cluster_domain: str = "cluster.local"
    node_port_range: PortRange = NODE_PORT_RANGE

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        services, pods = self.service_cidr, self.cluster_cidr
        _check(problems, "service_cidr", service_cidr_problem(services))
        if services.version != pods.version:
            problems.append(
                Problem("cluster_cidr", f"{pods} and service_cidr {services} differ in family")
            )
        elif services.overlaps(pods):
            problems.append(Problem("cluster_cidr", f"{pods} overlaps service_cidr {services}"))
        _check(problems, "cluster_dns", cluster_dns_problem(self.cluster_dns, services))
        _check(problems, "cluster_domain", dns_subdomain_problem(self.cluster_domain))
        _check(problems, "node_port_range", port_range_problem(self.node_port_range, {}))
        return problems


@frozen
class AuditSection:
    checkpoint_interval_seconds: float = 60.0
    """How often the node signs a checkpoint of the log's chain head."""

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        _positive(problems, "checkpoint_interval_seconds", self.checkpoint_interval_seconds)
        return problems


@frozen
class EngenhoConfig:
    """Build one with ``resolve_config`` (tiers and provenance) or ``prescribed_defaults``."""

    server: ServerSection
    node_agent: NodeAgentSection
    controllers: Mapping[str, ControllerSettings]
    cluster: ClusterSection = ClusterSection()
    replication: ReplicationSection = ReplicationSection()
    scheduler: SchedulerSection = SchedulerSection()
    networking: NetworkingSection = NetworkingSection()
    audit: AuditSection = AuditSection()
    node_lifecycle: NodeLifecycleSection = NodeLifecycleSection()

    def controller_enabled(self, name: str) -> bool:
        """Whether the controller ``name`` runs; one the config does not know does not."""
        settings = self.controllers.get(name)
        return settings is not None and settings.enabled

    def __attrs_post_init__(self) -> None:
        problems: list[Problem] = []
        sections: dict[str, _Section] = {
            "cluster": self.cluster,
            "server": self.server,
            "replication": self.replication,
            "scheduler": self.scheduler,
            "node_agent": self.node_agent,
            "networking": self.networking,
            "audit": self.audit,
            "node_lifecycle": self.node_lifecycle,
        }
        for name, section in sections.items():
            problems.extend(p.under(name) for p in section.problems())
        for name, settings in sorted(self.controllers.items()):
            _check(problems, f"controllers.{name}", dns_label_problem(name))
            problems.extend(p.under(f"controllers.{name}") for p in settings.problems())
        if self.replication.listen == self.server.listen:
            problems.append(
                Problem("replication.listen", f"{self.server.listen} is server.listen too")
            )
        if problems:
            raise InvalidConfigError(problems)
