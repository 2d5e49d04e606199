"""The k3s renderer: ``config.yaml``, ``cmdline.txt`` and ``manifests/``.

Every setting is written once, either as a config key or as a flag, never both:

- ``config.yaml`` (for /etc/rancher/k3s/config.yaml) holds what belongs to this node: its name,
  address, listeners and certificate names.
- ``cmdline.txt`` (``k3s server`` arguments, one ``--flag=value`` per line) holds what must be
  the same on every server of the cluster (k3s's "critical configuration values": CIDRs, DNS,
  flannel backend, disabled components), so that it can be shared verbatim by all of them.
- ``manifests/engenho-*.yaml`` are auto-applied by k3s: HelmCharts for a non-default CNI,
  ingress or load balancer, and the GitOps bootstrap.

Keys and flags are real ``k3s server`` flag names (tests/config checks them against k3s's
documented list). The network settings are written even where they equal k3s's defaults, so a
k3s release that changes a default does not change the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from attrs import frozen

from engenho.config.cluster_schema import (
    ArgoCdBootstrap,
    ClusterConfig,
    Cni,
    Component,
    Dns,
    FluxBootstrap,
    GitAuth,
    GitAuthKind,
    Ingress,
    LoadBalancer,
    NetworkPolicy,
)
from engenho.config.converting import kebab_case, make_converter
from engenho.config.k3s_manifests import (
    CHARTS,
    PLACEHOLDER,
    Application,
    ApplicationDestination,
    ApplicationSource,
    ApplicationSpec,
    AutomatedSync,
    GitRepository,
    GitRepositoryRef,
    GitRepositorySpec,
    HelmChart,
    HelmChartSpec,
    Kustomization,
    KustomizationSpec,
    LocalObjectReference,
    ObjectMeta,
    Secret,
    SourceReference,
    SyncPolicy,
    manifest,
)
from engenho.config.rendering import ClusterRenderer, RenderedFile, Rendering
from engenho.config.yamlio import dump_yaml, dump_yaml_documents

__all__ = [
    "CMDLINE_FILE",
    "CONFIG_FILE",
    "MANIFESTS_DIR",
    "K3sArgument",
    "K3sConfigFile",
    "K3sRenderer",
]

CONFIG_FILE = PurePosixPath("config.yaml")
CMDLINE_FILE = PurePosixPath("cmdline.txt")
MANIFESTS_DIR = PurePosixPath("manifests")
_MANIFEST_PREFIX = "engenho-"

_PACKAGED = (Component.LOCAL_STORAGE, Component.METRICS_SERVER, Component.RUNTIMES)
"""Components k3s leaves out with ``--disable=<name>``; the others have flags of their own."""

_OWN_FLAGS = {
    Component.HELM_CONTROLLER: "disable-helm-controller",
    Component.CLOUD_CONTROLLER: "disable-cloud-controller",
    Component.SCHEDULER: "disable-scheduler",
}


@frozen
class K3sArgument:
    """One ``k3s server`` argument; a boolean flag has no value and is written bare."""

    flag: str
    value: str | None = None

    def __str__(self) -> str:
        return f"--{self.flag}" if self.value is None else f"--{self.flag}={self.value}"


@frozen
class K3sConfigFile:
    """/etc/rancher/k3s/config.yaml: keys are k3s server flag names."""

    node_ip: str
    node_name: str | None = None
    advertise_address: str | None = None
    bind_address: str | None = None
    tls_san: tuple[str, ...] | None = None


_CONVERTER = make_converter(kebab_case)


class K3sRenderer(ClusterRenderer):
    name = "k3s"

    def config_file(self, config: ClusterConfig) -> dict[str, Any]:
        network = config.network
        record = K3sConfigFile(
            node_ip=str(config.node_ip),
            node_name=config.node_name,
            advertise_address=_text(network.advertise_address),
            bind_address=_text(network.bind_address),
            tls_san=tuple(sorted(set(network.tls_sans))) or None,
        )
        document: dict[str, Any] = _CONVERTER.unstructure(record)
        return {key: value for key, value in document.items() if value is not None}

    def server_arguments(self, config: ClusterConfig) -> tuple[K3sArgument, ...]:
        network = config.network
        dual = network.dual_stack
        cluster_cidrs = [network.cluster_cidr, dual.cluster_cidr_v6]
        service_cidrs = [network.service_cidr, dual.service_cidr_v6]
        args = [
            K3sArgument("cluster-cidr", ",".join(str(c) for c in cluster_cidrs if c)),
            K3sArgument("service-cidr", ",".join(str(c) for c in service_cidrs if c)),
            K3sArgument("cluster-dns", str(network.cluster_dns)),
            K3sArgument("cluster-domain", network.cluster_domain),
            K3sArgument("service-node-port-range", str(network.service_node_port_range)),
            K3sArgument("flannel-backend", network.effective_flannel_backend.value),
        ]
        pods_v6 = dual.cluster_cidr_v6
        if network.cni is Cni.FLANNEL and pods_v6 is not None and pods_v6.is_private:
            # Pods with unique-local or documentation v6 addresses cannot be answered from
            # outside unless their traffic is masqueraded (k3s's dual-stack advice).
            args.append(K3sArgument("flannel-ipv6-masq"))
        if network.effective_network_policy is not NetworkPolicy.ENABLED:
            args.append(K3sArgument("disable-network-policy"))
        if network.kube_proxy.disabled:
            args.append(K3sArgument("disable-kube-proxy"))
        elif network.kube_proxy.mode is not None:
            args.append(
                K3sArgument("kube-proxy-arg", f"proxy-mode={network.kube_proxy.mode.value}")
            )
        args += [K3sArgument("disable", name) for name in _packaged_disabled(config)]
        args += [K3sArgument(flag) for c, flag in _OWN_FLAGS.items() if c in network.disable]
        return tuple(sorted(args, key=lambda a: (a.flag, a.value or "")))

    def manifests(self, config: ClusterConfig) -> tuple[RenderedFile, ...]:
        files: list[RenderedFile] = []
        network = config.network

        def add(name: str, objects: Sequence[object], mode: int = 0o644) -> None:
            content = dump_yaml_documents(manifest(obj) for obj in objects)
            path = MANIFESTS_DIR / f"{_MANIFEST_PREFIX}{name}.yaml"
            files.append(RenderedFile(path, content.encode(), mode))

        if network.cni is Cni.CALICO:
            add("cni-calico", [_helm_chart("tigera-operator", _calico_values(config), True)])
        if network.cni is Cni.CILIUM:
            add("cni-cilium", [_helm_chart("cilium", _cilium_values(config), True)])
        if network.ingress is Ingress.NGINX:
            add("ingress-nginx", [_helm_chart("ingress-nginx", _nginx_values(config))])
        if network.load_balancer is LoadBalancer.METALLB:
            add("load-balancer-metallb", [_helm_chart("metallb")])
        flux, argocd = config.bootstrap.flux, config.bootstrap.argocd
        if flux is not None:
            # Two files: k3s applies a file as a whole and retries it every 15 s, so the
            # custom resources wait for the CRDs without holding back the install.
            add("gitops-flux-install", [_helm_chart("flux2")])
            add("gitops-flux-sync", _flux_sync(config, flux), _mode(flux.auth))
        if argocd is not None:
            add("gitops-argocd-install", [_helm_chart("argo-cd")])
            add("gitops-argocd-sync", _argocd_sync(config, argocd), _mode(argocd.auth))
        return tuple(sorted(files, key=lambda f: f.path))

    def render(self, config: ClusterConfig) -> Rendering:
        header = (
            f"# Generated by engenho cluster-config for cluster {config.cluster_name}.\n"
            "# Edit the ClusterConfig and render again instead of editing this file.\n"
        )
        config_yaml = header + dump_yaml(self.config_file(config))
        cmdline = "".join(f"{arg}\n" for arg in self.server_arguments(config))
        files = [
            RenderedFile(CONFIG_FILE, config_yaml.encode()),
            RenderedFile(CMDLINE_FILE, cmdline.encode()),
            *self.manifests(config),
        ]
        return Rendering(
            renderer=self.name,
            files=tuple(sorted(files, key=lambda f: f.path)),
            owned=(f"{MANIFESTS_DIR}/{_MANIFEST_PREFIX}*.yaml",),
        )


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def _mode(auth: GitAuth | None) -> int:
    return 0o644 if auth is None else 0o600


def _packaged_disabled(config: ClusterConfig) -> list[str]:
    network = config.network
    names = {c.value for c in network.disable if c in _PACKAGED}
    if network.ingress is not Ingress.TRAEFIK:
        names.add(Component.TRAEFIK.value)
    if network.load_balancer is not LoadBalancer.SERVICELB:
        names.add(Component.SERVICELB.value)
    if network.dns is Dns.EXTERNAL:
        names.add(Component.COREDNS.value)
    return sorted(names)


def _helm_chart(
    key: str, values: dict[str, Any] | None = None, bootstrap: bool | None = None
) -> HelmChart:
    chart = CHARTS[key]
    return HelmChart(
        metadata=ObjectMeta(name=key, namespace="kube-system"),
        spec=HelmChartSpec(
            repo=chart.repo,
            chart=chart.chart,
            version=chart.version,
            target_namespace=chart.namespace,
            bootstrap=bootstrap,
            values_content=dump_yaml(values) if values else None,
        ),
    )


def _calico_values(config: ClusterConfig) -> dict[str, Any]:
    network = config.network
    pools = [
        {
            "blockSize": 26,
            "cidr": str(network.cluster_cidr),
            "encapsulation": "VXLAN",
            "natOutgoing": "Enabled",
        }
    ]
    if network.dual_stack.cluster_cidr_v6 is not None:
        pools.append(
            {
                "blockSize": 122,
                "cidr": str(network.dual_stack.cluster_cidr_v6),
                "encapsulation": "VXLAN",
                "natOutgoing": "Enabled",
            }
        )
    calico_network: dict[str, Any] = {
        "bgp": "Disabled",
        # k3s's Calico guide: pods must be allowed to forward (for its service load balancer).
        "containerIPForwarding": "Enabled",
        "ipPools": pools,
    }
    if network.mtu is not None:
        calico_network["mtu"] = network.mtu
    return {"installation": {"calicoNetwork": calico_network, "cni": {"type": "Calico"}}}


def _cilium_values(config: ClusterConfig) -> dict[str, Any]:
    network = config.network
    api_host = network.advertise_address or config.node_ip
    values: dict[str, Any] = {
        # Pod CIDRs come from the nodes' spec.podCIDR, which k3s carves from cluster-cidr.
        "ipam": {"mode": "kubernetes"},
        "ipv6": {"enabled": network.dual_stack.enabled},
        "kubeProxyReplacement": network.kube_proxy.disabled,
        "operator": {"replicas": 1},
    }
    if network.kube_proxy.disabled:
        # Without kube-proxy the kubernetes Service's ClusterIP does not route yet when Cilium
        # starts; it must reach the apiserver directly.
        values["k8sServiceHost"] = str(api_host)
        values["k8sServicePort"] = 6443
    if network.mtu is not None:
        values["MTU"] = network.mtu
    return values


def _nginx_values(config: ClusterConfig) -> dict[str, Any] | None:
    if config.network.load_balancer is LoadBalancer.NONE:
        # No load balancer would ever give the controller's Service an address: listen on the
        # node's ports 80 and 443 instead.
        return {"controller": {"hostPort": {"enabled": True}, "service": {"type": "ClusterIP"}}}
    return None


def _flux_sync(config: ClusterConfig, flux: FluxBootstrap) -> list[object]:
    namespace = "flux-system"
    name = config.cluster_name
    objects: list[object] = []
    secret_ref = None
    if flux.auth is not None:
        secret_name = config.auth_secret_name(flux.auth)
        secret_ref = LocalObjectReference(secret_name)
        if flux.auth.kind is GitAuthKind.HTTPS_TOKEN:
            data = {"password": PLACEHOLDER, "username": "git"}
        else:
            data = {"identity": PLACEHOLDER, "known_hosts": PLACEHOLDER}
        objects.append(Secret(ObjectMeta(secret_name, namespace), string_data=data))
    objects.append(
        GitRepository(
            ObjectMeta(name, namespace),
            GitRepositorySpec(
                interval=flux.interval,
                url=flux.url,
                ref=GitRepositoryRef(flux.branch),
                secret_ref=secret_ref,
            ),
        )
    )
    objects.append(
        Kustomization(
            ObjectMeta(name, namespace),
            KustomizationSpec(
                interval=flux.interval,
                path=flux.path,
                source_ref=SourceReference("GitRepository", name),
            ),
        )
    )
    return objects


def _argocd_sync(config: ClusterConfig, argocd: ArgoCdBootstrap) -> list[object]:
    namespace = "argocd"
    objects: list[object] = []
    if argocd.auth is not None:
        # Argo CD finds repository credentials by label and URL; the Application names none.
        labels = {"argocd.argoproj.io/secret-type": "repository"}
        data = {"type": "git", "url": argocd.repo}
        if argocd.auth.kind is GitAuthKind.HTTPS_TOKEN:
            data |= {"password": PLACEHOLDER, "username": "git"}
        else:
            data |= {"sshPrivateKey": PLACEHOLDER}
        secret_name = config.auth_secret_name(argocd.auth)
        objects.append(Secret(ObjectMeta(secret_name, namespace, labels), string_data=data))
    objects.append(
        Application(
            ObjectMeta(f"{config.cluster_name}-root", namespace),
            ApplicationSpec(
                project="default",
                source=ApplicationSource(argocd.repo, argocd.revision, argocd.path),
                destination=ApplicationDestination("https://kubernetes.default.svc", namespace),
                sync_policy=SyncPolicy(AutomatedSync(prune=True, self_heal=True)),
            ),
        )
    )
    return objects
