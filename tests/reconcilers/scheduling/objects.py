"""Builders of the Node, Pod and Lease objects the scheduler tests use (plain dicts, as the
API stores them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    ready: str | None = "True",
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {},
        "status": {"capacity": dict(allocatable), "allocatable": allocatable},
    }
    if taints:
        obj["spec"]["taints"] = taints
    if unschedulable:
        obj["spec"]["unschedulable"] = True
    if ready is not None:
        obj["status"]["conditions"] = [{"type": "Ready", "status": ready, "reason": "Test"}]
    return obj


def pod(
    name: str,
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    requests: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    node_name: str | None = None,
    uid: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    wanted = dict(requests or {})
    if cpu is not None:
        wanted["cpu"] = cpu
    if memory is not None:
        wanted["memory"] = memory
    container: dict[str, Any] = {"name": "main", "image": "nginx"}
    if wanted:
        container["resources"] = {"requests": wanted}
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}"},
        "spec": {"containers": [container], **spec},
    }
    if labels:
        obj["metadata"]["labels"] = labels
    if node_name:
        obj["spec"]["nodeName"] = node_name
    return obj


def lease(node_name: str, renewed: float | None, *, seconds: int | None = 40) -> dict[str, Any]:
    spec: dict[str, Any] = {"holderIdentity": node_name}
    if renewed is not None:
        stamp = datetime.fromtimestamp(renewed, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec["renewTime"] = stamp
    if seconds is not None:
        spec["leaseDurationSeconds"] = seconds
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node_name, "namespace": "kube-node-lease"},
        "spec": spec,
    }


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict[str, str]:
    return {"key": key, "value": value, "effect": effect}
