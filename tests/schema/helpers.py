"""Shared fixtures for the schema tests: the upstream documents, the corpus, object builders."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / ".." / "shared" / "k8s-openapi" / "v3"
CORPUS = Path(__file__).resolve().parent / "corpus"

requires_specs = pytest.mark.skipif(
    not SPECS.is_dir(),
    reason=f"the upstream OpenAPI documents are absent ({SPECS}); "
    "codegen and re-emission checks need ../shared/k8s-openapi/v3",
)


def corpus() -> list[tuple[str, dict[str, Any]]]:
    """Every manifest of ``tests/schema/corpus``, as (file:kind/name, object)."""
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in sorted(CORPUS.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    ]


def three_container_pod() -> dict[str, Any]:
    """The benchmark's typical Pod: three containers, ports, env, probes, resources, volumes."""
    return copy.deepcopy(_POD)


_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-0",
        "namespace": "default",
        "labels": {"app": "web", "tier": "frontend"},
        "annotations": {"example.com/owner": "team-a"},
    },
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "registry.example.com:5000/web/app:1.4.2",
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            },
            {
                "name": "sidecar",
                "image": "envoyproxy/envoy:v1.29.1",
                "ports": [{"containerPort": 9901, "name": "admin"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
            },
            {
                "name": "log",
                "image": "busybox",
                "args": ["sh", "-c", "tail -f /var/log/app.log"],
                "volumeMounts": [{"name": "logs", "mountPath": "/var/log"}],
            },
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": "web-config"}},
            {"name": "logs", "emptyDir": {}},
        ],
    },
}


def deployment(name: str = "web", labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
            },
        },
    }


def service(name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
