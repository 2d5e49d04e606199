"""The auto-apply manifests k3s reads from /var/lib/rancher/k3s/server/manifests.

Every object is a typed record, unstructured with the camelCase keys Kubernetes uses and null
fields left out. Chart versions are pinned here, so that a rendering is reproducible; raising
one is a reviewed change to this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from engenho.config.converting import make_converter

__all__ = [
    "CHARTS",
    "PLACEHOLDER",
    "Application",
    "ApplicationDestination",
    "ApplicationSource",
    "ApplicationSpec",
    "AutomatedSync",
    "Chart",
    "GitRepository",
    "GitRepositoryRef",
    "GitRepositorySpec",
    "HelmChart",
    "HelmChartSpec",
    "Kustomization",
    "KustomizationSpec",
    "LocalObjectReference",
    "ObjectMeta",
    "Secret",
    "SourceReference",
    "SyncPolicy",
    "manifest",
]

PLACEHOLDER = "REPLACE-ON-NODE-BEFORE-K3S-STARTS"
"""The value of every placeholder Secret key; see docs/config.md, "Secrets"."""


@frozen
class Chart:
    repo: str
    chart: str
    version: str
    namespace: str


CHARTS: Mapping[str, Chart] = {
    "argo-cd": Chart("https://argoproj.github.io/argo-helm", "argo-cd", "7.7.0", "argocd"),
    "cilium": Chart("https://helm.cilium.io/", "cilium", "1.16.3", "kube-system"),
    "flux2": Chart(
        "https://fluxcd-community.github.io/helm-charts", "flux2", "2.13.0", "flux-system"
    ),
    "ingress-nginx": Chart(
        "https://kubernetes.github.io/ingress-nginx", "ingress-nginx", "4.11.3", "ingress-nginx"
    ),
    "metallb": Chart("https://metallb.github.io/metallb", "metallb", "0.14.8", "metallb-system"),
    "tigera-operator": Chart(
        "https://docs.tigera.io/calico/charts", "tigera-operator", "v3.28.2", "tigera-operator"
    ),
}


def _key(name: str) -> Any:
    return {"key": name}


@frozen
class ObjectMeta:
    name: str
    namespace: str | None = None
    labels: Mapping[str, str] | None = None


@frozen
class HelmChartSpec:
    repo: str
    chart: str
    version: str
    target_namespace: str = field(metadata=_key("targetNamespace"))
    create_namespace: bool = field(default=True, metadata=_key("createNamespace"))
    bootstrap: bool | None = None
    """True for a CNI: its install job must run before the node has pod networking."""
    values_content: str | None = field(default=None, metadata=_key("valuesContent"))


@frozen
class HelmChart:
    metadata: ObjectMeta
    spec: HelmChartSpec
    api_version: str = field(default="helm.cattle.io/v1", metadata=_key("apiVersion"))
    kind: str = "HelmChart"


@frozen
class Secret:
    metadata: ObjectMeta
    string_data: Mapping[str, str] = field(metadata=_key("stringData"))
    type: str = "Opaque"
    api_version: str = field(default="v1", metadata=_key("apiVersion"))
    kind: str = "Secret"


@frozen
class LocalObjectReference:
    name: str


@frozen
class GitRepositoryRef:
    branch: str


@frozen
class GitRepositorySpec:
    interval: str
    url: str
    ref: GitRepositoryRef
    secret_ref: LocalObjectReference | None = field(default=None, metadata=_key("secretRef"))


@frozen
class GitRepository:
    metadata: ObjectMeta
    spec: GitRepositorySpec
    api_version: str = field(default="source.toolkit.fluxcd.io/v1", metadata=_key("apiVersion"))
    kind: str = "GitRepository"


@frozen
class SourceReference:
    kind: str
    name: str


@frozen
class KustomizationSpec:
    interval: str
    path: str
    source_ref: SourceReference = field(metadata=_key("sourceRef"))
    prune: bool = True


@frozen
class Kustomization:
    metadata: ObjectMeta
    spec: KustomizationSpec
    api_version: str = field(default="kustomize.toolkit.fluxcd.io/v1", metadata=_key("apiVersion"))
    kind: str = "Kustomization"


@frozen
class ApplicationSource:
    repo_url: str = field(metadata=_key("repoURL"))
    target_revision: str = field(metadata=_key("targetRevision"))
    path: str


@frozen
class ApplicationDestination:
    server: str
    namespace: str


@frozen
class AutomatedSync:
    prune: bool
    self_heal: bool = field(metadata=_key("selfHeal"))


@frozen
class SyncPolicy:
    automated: AutomatedSync


@frozen
class ApplicationSpec:
    project: str
    source: ApplicationSource
    destination: ApplicationDestination
    sync_policy: SyncPolicy = field(metadata=_key("syncPolicy"))


@frozen
class Application:
    metadata: ObjectMeta
    spec: ApplicationSpec
    api_version: str = field(default="argoproj.io/v1alpha1", metadata=_key("apiVersion"))
    kind: str = "Application"


_CONVERTER = make_converter(lambda name: name)


def manifest(obj: object) -> dict[str, Any]:
    """A record as the mapping Kubernetes reads: camelCase keys, null fields left out."""
    document: dict[str, Any] = _without_nulls(_CONVERTER.unstructure(obj))
    return document


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
