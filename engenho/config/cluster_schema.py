"""ClusterConfig: one typed description of a k3s cluster (a VM or machine image).

Keys are kebab-case in YAML and unknown keys are refused (``cluster_loading``). A ClusterConfig
checks the whole tree when constructed, so one that exists is valid; the nested records only
report their ``problems()`` (paths relative to themselves) so that the root can list every
problem at once. Refusals are InvalidConfigError naming each field by its path
(``network.cluster-dns``). Defaults are stock k3s. The rules and their reasons are in
docs/config.md.
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from attrs import frozen

from engenho.config.errors import InvalidConfigError
from engenho.config.names import (
    dns_label_problem,
    dns_subdomain_problem,
    git_ref_problem,
    go_duration_problem,
    host_problem,
    repository_path_problem,
)
from engenho.config.networks import (
    IPAddress,
    IPNetwork,
    PortRange,
    cluster_dns_problem,
    port_range_problem,
    service_cidr_problem,
)
from engenho.config.problems import Problem

__all__ = [
    "K3S_CLUSTER_CIDR",
    "K3S_CLUSTER_DNS",
    "K3S_RESERVED_PORTS",
    "K3S_SERVICE_CIDR",
    "MTU_RANGE",
    "NODE_PORT_RANGE",
    "ArgoCdBootstrap",
    "Bootstrap",
    "ClusterConfig",
    "Cni",
    "Component",
    "Dns",
    "DualStack",
    "FlannelBackend",
    "FluxBootstrap",
    "GitAuth",
    "GitAuthKind",
    "Ingress",
    "KubeProxy",
    "LoadBalancer",
    "Network",
    "NetworkPolicy",
    "ProxyMode",
]

K3S_CLUSTER_CIDR = IPv4Network("10.42.0.0/16")
K3S_SERVICE_CIDR = IPv4Network("10.43.0.0/16")
K3S_CLUSTER_DNS = IPv4Address("10.43.0.10")
NODE_PORT_RANGE = PortRange(30000, 32767)

K3S_RESERVED_PORTS = {
    2379: "etcd (clients)",
    2380: "etcd (peers)",
    6443: "the k3s supervisor and apiserver",
    10250: "the kubelet",
}
"""TCP ports a k3s server listens on (k3s "Inbound Rules for K3s Nodes")."""

MTU_RANGE = (1280, 9216)
"""IPv6's minimum link MTU up to the largest common jumbo frame."""


class Cni(enum.Enum):
    FLANNEL = "flannel"
    CALICO = "calico"
    CILIUM = "cilium"
    NONE = "none"


class FlannelBackend(enum.Enum):
    VXLAN = "vxlan"
    HOST_GW = "host-gw"
    WIREGUARD_NATIVE = "wireguard-native"
    NONE = "none"


class ProxyMode(enum.Enum):
    IPTABLES = "iptables"
    IPVS = "ipvs"
    NFTABLES = "nftables"


class NetworkPolicy(enum.Enum):
    ENABLED = "enabled"
    """k3s's embedded network policy controller enforces NetworkPolicies."""
    DISABLED = "disabled"
    """Nothing enforces NetworkPolicies."""
    DELEGATED = "delegated"
    """The CNI (calico or cilium) enforces them; k3s's controller is off."""


class Ingress(enum.Enum):
    TRAEFIK = "traefik"
    NGINX = "nginx"
    NONE = "none"


class LoadBalancer(enum.Enum):
    SERVICELB = "servicelb"
    METALLB = "metallb"
    NONE = "none"


class Dns(enum.Enum):
    COREDNS = "coredns"
    EXTERNAL = "external"


class Component(enum.Enum):
    """What ``network.disable`` may name: k3s's packaged components and the control-plane parts
    it can leave out. Five of them are owned by another field and refused here, so that each
    setting has one spelling."""

    LOCAL_STORAGE = "local-storage"
    METRICS_SERVER = "metrics-server"
    RUNTIMES = "runtimes"
    HELM_CONTROLLER = "helm-controller"
    CLOUD_CONTROLLER = "cloud-controller"
    SCHEDULER = "scheduler"
    TRAEFIK = "traefik"
    SERVICELB = "servicelb"
    COREDNS = "coredns"
    KUBE_PROXY = "kube-proxy"
    NETWORK_POLICY = "network-policy"


_OWNED_ELSEWHERE = {
    Component.TRAEFIK: "network.ingress (set it to none or nginx)",
    Component.SERVICELB: "network.load-balancer (set it to none or metallb)",
    Component.COREDNS: "network.dns (set it to external)",
    Component.KUBE_PROXY: "network.kube-proxy.disabled",
    Component.NETWORK_POLICY: "network.network-policy (set it to disabled)",
}


class GitAuthKind(enum.Enum):
    HTTPS_TOKEN = "https-token"  # noqa: S105 - the name of a kind of credential, not one
    SSH_KEY = "ssh-key"


def _check(problems: list[Problem], path: str, message: str | None) -> None:
    if message is not None:
        problems.append(Problem(path, message))


@frozen
class KubeProxy:
    mode: ProxyMode | None = None
    """None: kube-proxy's own default (iptables), and no flag is rendered."""
    disabled: bool = False

    def problems(self) -> list[Problem]:
        if self.disabled and self.mode is not None:
            return [Problem("mode", "has no effect when kube-proxy is disabled; remove it")]
        return []


@frozen
class DualStack:
    enabled: bool = False
    cluster_cidr_v6: IPv6Network | None = None
    service_cidr_v6: IPv6Network | None = None

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        cidrs = {"cluster-cidr-v6": self.cluster_cidr_v6, "service-cidr-v6": self.service_cidr_v6}
        for name, cidr in cidrs.items():
            if self.enabled and cidr is None:
                problems.append(Problem(name, "is required when dual-stack is enabled"))
            if not self.enabled and cidr is not None:
                problems.append(Problem(name, "is set but dual-stack is not enabled"))
        pods, services = self.cluster_cidr_v6, self.service_cidr_v6
        if pods is not None and not 48 <= pods.prefixlen <= 64:
            problems.append(
                Problem(
                    "cluster-cidr-v6",
                    f"{pods} must be a /48 to /64: each node takes a /64 from it, and "
                    "kube-controller-manager allows at most 16 bits of node subnets",
                )
            )
        if services is not None:
            _check(problems, "service-cidr-v6", service_cidr_problem(services))
        if pods is not None and services is not None and pods.overlaps(services):
            problems.append(
                Problem("service-cidr-v6", f"{services} overlaps cluster-cidr-v6 {pods}")
            )
        return problems


@frozen
class Network:
    cni: Cni = Cni.FLANNEL
    flannel_backend: FlannelBackend | None = None
    """Only with cni flannel; None: vxlan, k3s's default."""
    cluster_cidr: IPv4Network = K3S_CLUSTER_CIDR
    service_cidr: IPv4Network = K3S_SERVICE_CIDR
    cluster_dns: IPv4Address = K3S_CLUSTER_DNS
    cluster_domain: str = "cluster.local"
    service_node_port_range: PortRange = NODE_PORT_RANGE
    mtu: int | None = None
    """Only with calico or cilium: k3s gives flannel no MTU setting (it follows the node's
    interface)."""
    kube_proxy: KubeProxy = KubeProxy()
    network_policy: NetworkPolicy | None = None
    """None: enabled with flannel, delegated with calico or cilium, disabled with none."""
    ingress: Ingress = Ingress.TRAEFIK
    load_balancer: LoadBalancer = LoadBalancer.SERVICELB
    dns: Dns = Dns.COREDNS
    dual_stack: DualStack = DualStack()
    tls_sans: tuple[str, ...] = ()
    """Extra names and addresses on the apiserver's certificate; k3s adds the node's own."""
    advertise_address: IPAddress | None = None
    bind_address: IPAddress | None = None
    disable: tuple[Component, ...] = ()

    @property
    def effective_flannel_backend(self) -> FlannelBackend:
        if self.cni is not Cni.FLANNEL:
            return FlannelBackend.NONE
        return self.flannel_backend or FlannelBackend.VXLAN

    @property
    def effective_network_policy(self) -> NetworkPolicy:
        if self.network_policy is not None:
            return self.network_policy
        return {
            Cni.FLANNEL: NetworkPolicy.ENABLED,
            Cni.CALICO: NetworkPolicy.DELEGATED,
            Cni.CILIUM: NetworkPolicy.DELEGATED,
            Cni.NONE: NetworkPolicy.DISABLED,
        }[self.cni]

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        self._check_addresses(problems)
        self._check_cni(problems)
        self._check_components(problems)
        problems.extend(p.under("kube-proxy") for p in self.kube_proxy.problems())
        problems.extend(p.under("dual-stack") for p in self.dual_stack.problems())
        return problems

    def _check_addresses(self, problems: list[Problem]) -> None:
        pods, services = self.cluster_cidr, self.service_cidr
        if pods.prefixlen > 24:
            problems.append(
                Problem("cluster-cidr", f"{pods} is smaller than the /24 each node takes from it")
            )
        _check(problems, "service-cidr", service_cidr_problem(services))
        if pods.overlaps(services):
            problems.append(Problem("service-cidr", f"{services} overlaps cluster-cidr {pods}"))
        _check(problems, "cluster-dns", cluster_dns_problem(self.cluster_dns, services))
        _check(problems, "cluster-domain", dns_subdomain_problem(self.cluster_domain))
        _check(
            problems,
            "service-node-port-range",
            port_range_problem(self.service_node_port_range, K3S_RESERVED_PORTS),
        )
        for index, name in enumerate(self.tls_sans):
            _check(problems, f"tls-sans[{index}]", host_problem(name))
        if self.advertise_address is not None:
            if self.advertise_address.is_unspecified:
                problems.append(Problem("advertise-address", "must be a specific address"))
            _check(problems, "advertise-address", self.address_problem(self.advertise_address))

    def address_problem(self, address: IPAddress) -> str | None:
        """A node's address inside the pod or service range would be routed into the cluster."""
        ranges: dict[str, IPNetwork] = {
            "cluster-cidr": self.cluster_cidr,
            "service-cidr": self.service_cidr,
        }
        if self.dual_stack.cluster_cidr_v6 is not None:
            ranges["cluster-cidr-v6"] = self.dual_stack.cluster_cidr_v6
        if self.dual_stack.service_cidr_v6 is not None:
            ranges["service-cidr-v6"] = self.dual_stack.service_cidr_v6
        for name, network in ranges.items():
            if address.version == network.version and address in network:
                return f"{address} is inside {name} {network}"
        return None

    def _check_cni(self, problems: list[Problem]) -> None:
        cni = self.cni
        if self.flannel_backend is not None:
            if cni is not Cni.FLANNEL:
                problems.append(
                    Problem("flannel-backend", f"applies only with cni flannel, not {cni.value}")
                )
            elif self.flannel_backend is FlannelBackend.NONE:
                problems.append(
                    Problem("flannel-backend", "none runs no CNI at all; set cni: none instead")
                )
        policy = self.network_policy
        if policy is NetworkPolicy.DELEGATED and cni not in (Cni.CALICO, Cni.CILIUM):
            problems.append(
                Problem(
                    "network-policy",
                    f"delegated needs cni calico or cilium to enforce policies, not {cni.value}",
                )
            )
        if policy is NetworkPolicy.ENABLED and cni in (Cni.CALICO, Cni.CILIUM):
            problems.append(
                Problem(
                    "network-policy",
                    f"enabled runs k3s's policy controller beside {cni.value}'s own, and both "
                    "would program the same rules; use delegated",
                )
            )
        if self.kube_proxy.disabled and cni not in (Cni.CILIUM, Cni.NONE):
            problems.append(
                Problem(
                    "kube-proxy.disabled",
                    f"needs cni cilium (which replaces kube-proxy) or none, not {cni.value}",
                )
            )
        if self.mtu is not None:
            low, high = MTU_RANGE
            if cni not in (Cni.CALICO, Cni.CILIUM):
                problems.append(
                    Problem(
                        "mtu",
                        f"applies only with cni calico or cilium; with {cni.value} the MTU "
                        "follows the node's interface",
                    )
                )
            elif not low <= self.mtu <= high:
                problems.append(Problem("mtu", f"{self.mtu} is outside {low}-{high}"))

    def _check_components(self, problems: list[Problem]) -> None:
        for index, component in enumerate(self.disable):
            owner = _OWNED_ELSEWHERE.get(component)
            if owner is not None:
                problems.append(
                    Problem(f"disable[{index}]", f"{component.value} is chosen by {owner}")
                )
            if component in self.disable[:index]:
                problems.append(Problem(f"disable[{index}]", f"{component.value} is repeated"))


@frozen
class GitAuth:
    """A reference to the Secret holding the repository credential. The renderer writes a
    placeholder Secret under this name, to be replaced on the node before k3s applies it."""

    kind: GitAuthKind
    secret_name: str | None = None
    """None: ``<cluster-name>-gitops-auth``."""

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.secret_name is not None:
            _check(problems, "secret-name", dns_subdomain_problem(self.secret_name))
        return problems


def _url_problems(url: str, auth: GitAuth | None, field_name: str) -> list[Problem]:
    scp_like = "@" in url.partition(":")[0] and "://" not in url
    if url.startswith("https://") or url.startswith("http://"):
        scheme = "https" if url.startswith("https://") else "http"
    elif url.startswith("ssh://") or scp_like:
        scheme = "ssh"
    else:
        return [
            Problem(
                field_name,
                f"{url!r} is not a git URL (https://..., ssh://... or git@host:path)",
            )
        ]
    if any(c.isspace() for c in url):
        return [Problem(field_name, f"{url!r} must not contain whitespace")]
    if auth is None:
        return []
    problems = [p.under("auth") for p in auth.problems()]
    if auth.kind is GitAuthKind.SSH_KEY and scheme != "ssh":
        problems.append(Problem("auth.kind", f"ssh-key needs an ssh URL, not {scheme}"))
    if auth.kind is GitAuthKind.HTTPS_TOKEN and scheme != "https":
        problems.append(Problem("auth.kind", f"https-token needs an https URL, not {scheme}"))
    return problems


@frozen
class FluxBootstrap:
    """Flux installs itself, then syncs ``path`` of ``url`` at ``branch`` every ``interval``."""

    url: str
    branch: str = "main"
    path: str = "./"
    interval: str = "1m"
    auth: GitAuth | None = None

    def problems(self) -> list[Problem]:
        problems = _url_problems(self.url, self.auth, "url")
        _check(problems, "branch", git_ref_problem(self.branch))
        _check(problems, "path", repository_path_problem(self.path))
        _check(problems, "interval", go_duration_problem(self.interval))
        return problems


@frozen
class ArgoCdBootstrap:
    """Argo CD installs itself, then an Application syncs ``path`` of ``repo`` at
    ``revision``, pruning and self-healing."""

    repo: str
    revision: str = "HEAD"
    path: str = "."
    auth: GitAuth | None = None

    def problems(self) -> list[Problem]:
        problems = _url_problems(self.repo, self.auth, "repo")
        _check(problems, "revision", git_ref_problem(self.revision))
        _check(problems, "path", repository_path_problem(self.path))
        return problems


@frozen
class Bootstrap:
    """GitOps from first boot; both off by default, at most one on."""

    flux: FluxBootstrap | None = None
    argocd: ArgoCdBootstrap | None = None

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.flux is not None:
            problems.extend(p.under("flux") for p in self.flux.problems())
        if self.argocd is not None:
            problems.extend(p.under("argocd") for p in self.argocd.problems())
            if self.flux is not None:
                problems.append(
                    Problem(
                        "argocd",
                        "flux is already set: two GitOps engines would fight over the same "
                        "objects; choose one",
                    )
                )
        return problems


@frozen
class ClusterConfig:
    cluster_name: str
    node_ip: IPv4Address
    node_name: str | None = None
    """None: k3s names the node after the host."""
    network: Network = Network()
    bootstrap: Bootstrap = Bootstrap()

    @property
    def needs_helm_controller(self) -> bool:
        """Whether anything rendered is a HelmChart, which k3s's helm controller installs."""
        network = self.network
        return (
            network.cni in (Cni.CALICO, Cni.CILIUM)
            or network.ingress is Ingress.NGINX
            or network.load_balancer is LoadBalancer.METALLB
            or self.bootstrap.flux is not None
            or self.bootstrap.argocd is not None
        )

    def auth_secret_name(self, auth: GitAuth) -> str:
        return auth.secret_name or f"{self.cluster_name}-gitops-auth"

    def __attrs_post_init__(self) -> None:
        problems: list[Problem] = []
        _check(problems, "cluster-name", dns_label_problem(self.cluster_name))
        if self.node_name is not None:
            _check(problems, "node-name", dns_subdomain_problem(self.node_name))
        if self.node_ip.is_unspecified or self.node_ip.is_multicast:
            problems.append(Problem("node-ip", f"{self.node_ip} is not a node's unicast address"))
        _check(problems, "node-ip", self.network.address_problem(self.node_ip))
        if self.needs_helm_controller and Component.HELM_CONTROLLER in self.network.disable:
            index = self.network.disable.index(Component.HELM_CONTROLLER)
            problems.append(
                Problem(
                    f"network.disable[{index}]",
                    "helm-controller installs the HelmCharts this config renders "
                    "(for its cni, ingress, load-balancer or bootstrap); keep it",
                )
            )
        problems.extend(p.under("network") for p in self.network.problems())
        problems.extend(p.under("bootstrap") for p in self.bootstrap.problems())
        if problems:
            raise InvalidConfigError(problems)
