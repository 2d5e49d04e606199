"""How a pod's spec becomes what the runtime is given: sandbox and container configs, the
labels that tie runtime objects back to pods, image pull policies, resources, DNS.

Pure functions of the pod and the node's settings (no I/O), so the worker stays about
ordering and the rules stay testable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engenho.node_agent.runtime import (
    ContainerConfig,
    DnsConfig,
    EnvVar,
    Mount,
    PodNetwork,
    PullPolicy,
    Resources,
    SandboxConfig,
)
from engenho.schema.errors import QuantityError
from engenho.schema.quantity import Quantity

__all__ = [
    "LABEL_CONTAINER",
    "LABEL_POD_NAME",
    "LABEL_POD_NAMESPACE",
    "LABEL_POD_UID",
    "container_config",
    "dns_config",
    "find_container",
    "log_path",
    "pod_ref",
    "pull_policy",
    "sandbox_config",
]

Obj = Mapping[str, Any]
# Upstream's labels on runtime objects (pkg/kubelet/types/labels.go).
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER = "io.kubernetes.container.name"
ANNOTATION_RESTART_COUNT = "io.kubernetes.container.restartCount"


def _meta(pod: Obj) -> Obj:
    return pod.get("metadata") or {}


def pod_ref(pod: Obj) -> str:
    """``name_namespace(uid)``: how upstream's messages name a pod."""
    meta = _meta(pod)
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def find_container(pod: Obj, name: str) -> dict[str, Any] | None:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") == name:
            return dict(container)
    return None


def pull_policy(container: Obj) -> PullPolicy:
    """``imagePullPolicy``, defaulted as the apiserver does: Always for ``:latest`` or no
    tag, else IfNotPresent."""
    value = container.get("imagePullPolicy")
    for policy in PullPolicy:
        if policy.value == value:
            return policy
    image = str(container.get("image") or "")
    if "@" in image:
        return PullPolicy.IF_NOT_PRESENT
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return PullPolicy.ALWAYS if not tag or tag == "latest" else PullPolicy.IF_NOT_PRESENT


def log_path(root: Path, pod: Obj, container: str, attempt: int) -> Path:
    """``<root>/<namespace>_<name>_<uid>/<container>/<attempt>.log`` (upstream's
    ``/var/log/pods`` layout)."""
    meta = _meta(pod)
    return (
        root
        / f"{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}"
        / container
        / f"{attempt}.log"
    )


def dns_config(
    pod: Obj, *, cluster_dns: str | None, cluster_domain: str, use_cluster_dns: bool
) -> DnsConfig | None:
    """The pod's resolv.conf from ``dnsPolicy`` and ``dnsConfig`` (None: the host's).
    ``use_cluster_dns`` is False when nothing serves the cluster DNS address, in which case
    ClusterFirst falls back to the host's resolver rather than to a dead address."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    extra = spec.get("dnsConfig") or {}
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network)
    if cluster and cluster_dns and use_cluster_dns:
        namespace = _meta(pod).get("namespace")
        nameservers = [cluster_dns]
        searches = [
            f"{namespace}.svc.{cluster_domain}",
            f"svc.{cluster_domain}",
            cluster_domain,
        ]
        options = ["ndots:5"]
    elif policy != "None" and not extra:
        return None
    nameservers += [str(s) for s in extra.get("nameservers") or []]
    searches += [str(s) for s in extra.get("searches") or []]
    for option in extra.get("options") or []:
        name = str(option.get("name"))
        value = option.get("value")
        options = [o for o in options if o.partition(":")[0] != name]
        options.append(f"{name}:{value}" if value is not None else name)
    return DnsConfig(tuple(nameservers), tuple(dict.fromkeys(searches)), tuple(options))


def sandbox_config(
    pod: Obj,
    directory: Path,
    network: PodNetwork | None,
    dns: DnsConfig | None,
) -> SandboxConfig:
    meta = _meta(pod)
    spec = pod.get("spec") or {}
    hostname = str(spec.get("hostname") or meta.get("name") or "")[:63]
    aliases = tuple(
        (str(alias.get("ip")), tuple(str(h) for h in alias.get("hostnames") or []))
        for alias in spec.get("hostAliases") or []
    )
    return SandboxConfig(
        name=str(meta.get("name")),
        namespace=str(meta.get("namespace")),
        uid=str(meta.get("uid")),
        hostname=hostname,
        directory=directory,
        network=network,
        dns=dns,
        host_aliases=aliases,
        labels={
            LABEL_POD_NAME: str(meta.get("name")),
            LABEL_POD_NAMESPACE: str(meta.get("namespace")),
            LABEL_POD_UID: str(meta.get("uid")),
        },
        annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
    )


def _quantity(value: Any) -> Quantity | None:
    if value is None:
        return None
    try:
        return Quantity.from_json(value)
    except QuantityError:
        return None


def _resources(container: Obj) -> Resources:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = {**limits, **(resources.get("requests") or {})}
    cpu_limit = _quantity(limits.get("cpu"))
    memory_limit = _quantity(limits.get("memory"))
    cpu_request = _quantity(requests.get("cpu"))
    return Resources(
        cpu_limit_millis=cpu_limit.milli_value() if cpu_limit else None,
        memory_limit_bytes=memory_limit.value() if memory_limit else None,
        cpu_request_millis=cpu_request.milli_value() if cpu_request else None,
    )


def _security(pod: Obj, container: Obj) -> tuple[int | None, int | None, tuple[int, ...]]:
    pod_context = (pod.get("spec") or {}).get("securityContext") or {}
    own = container.get("securityContext") or {}

    def pick(key: str) -> int | None:
        value = own.get(key, pod_context.get(key))
        return int(value) if value is not None else None

    groups = tuple(int(g) for g in pod_context.get("supplementalGroups") or [])
    return pick("runAsUser"), pick("runAsGroup"), groups


def container_config(
    pod: Obj,
    container: Obj,
    *,
    image: str,
    env: Sequence[tuple[str, str]],
    command: Sequence[str],
    args: Sequence[str],
    mounts: Sequence[Mount],
    log: Path,
    attempt: int,
) -> ContainerConfig:
    meta = _meta(pod)
    user, group, groups = _security(pod, container)
    return ContainerConfig(
        name=str(container.get("name")),
        image=image,
        log_path=log,
        command=tuple(command),
        args=tuple(args),
        env=tuple(EnvVar(name, value) for name, value in env),
        working_dir=str(container.get("workingDir") or ""),
        run_as_user=user,
        run_as_group=group,
        supplemental_groups=groups,
        mounts=tuple(mounts),
        resources=_resources(container),
        tty=bool(container.get("tty")),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        labels={
            LABEL_POD_NAME: str(meta.get("name")),
            LABEL_POD_NAMESPACE: str(meta.get("namespace")),
            LABEL_POD_UID: str(meta.get("uid")),
            LABEL_CONTAINER: str(container.get("name")),
        },
        annotations={ANNOTATION_RESTART_COUNT: str(attempt)},
        attempt=attempt,
    )
