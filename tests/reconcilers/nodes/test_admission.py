"""DefaultTolerationSeconds, as the registry's admission step: every pod tolerates the
not-ready and unreachable NoExecute taints for 300 s (configurable) unless it already
tolerates them; subresource writes are left alone."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from engenho.registry import AdmissionSettings

from .conftest import PODS, Cluster, open_cluster

DEFAULTS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]


def pod(name: str, tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_pods_get_the_default_tolerations(cluster: Cluster) -> None:
    made = await cluster.registry.create(cluster.ctx(), PODS, "default", pod("plain"))
    assert made.object["spec"]["tolerations"] == DEFAULTS
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    made = await cluster.registry.create(cluster.ctx(), PODS, "default", pod("own", [own]))
    assert made.object["spec"]["tolerations"] == [own, DEFAULTS[0]]
    everything = {"operator": "Exists"}
    made = await cluster.registry.create(cluster.ctx(), PODS, "default", pod("all", [everything]))
    assert made.object["spec"]["tolerations"] == [everything]


async def test_an_update_that_drops_them_gets_them_back(cluster: Cluster) -> None:
    made = await cluster.registry.create(cluster.ctx(), PODS, "default", pod("p"))
    body = copy.deepcopy(made.object)
    body["spec"].pop("tolerations")
    updated, _ = await cluster.registry.update(cluster.ctx(), PODS, "default", "p", body)
    assert updated.object["spec"]["tolerations"] == DEFAULTS
    assert updated.resource_version == made.resource_version, "nothing changed"


async def test_the_seconds_are_configurable(tmp_path: Path) -> None:
    cluster = await open_cluster(
        tmp_path,
        admission=AdmissionSettings(
            default_not_ready_toleration_seconds=5, default_unreachable_toleration_seconds=7
        ),
    )
    try:
        made = await cluster.registry.create(cluster.ctx(), PODS, "default", pod("p"))
        assert [t["tolerationSeconds"] for t in made.object["spec"]["tolerations"]] == [5, 7]
    finally:
        await cluster.close()
        await cluster.projections.close()
        await cluster.log.close()
