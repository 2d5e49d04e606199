"""OpenAPI re-emission: every schema rebuilt from metadata equals its upstream source, the
documents' references resolve, and the operations kubectl inspects are present."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from engenho.schema import (
    CATALOGUE,
    openapi_v2_document,
    openapi_v3_document,
    openapi_v3_paths,
)
from engenho.schema.openapi import _schema
from engenho.schema.registry import DEFINITIONS

from .helpers import SPECS, requires_specs


def _normalise(node: Any) -> Any:
    """Upstream's two $ref styles as one (allOf-wrapped when siblings exist); enums deduplicated."""
    if isinstance(node, dict):
        node = {key: _normalise(value) for key, value in node.items()}
        if "$ref" in node and len(node) > 1:
            ref = node.pop("$ref")
            node = {"allOf": [{"$ref": ref}], **node}
        if "enum" in node:
            node["enum"] = list(dict.fromkeys(node["enum"]))
        return node
    if isinstance(node, list):
        return [_normalise(item) for item in node]
    return node


@requires_specs
@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_reemitted_schema_equals_the_source(name: str) -> None:
    definition = DEFINITIONS[name]
    source = json.loads((SPECS / definition.source).read_text())["components"]["schemas"][name]
    assert _schema(definition, v2=False) == _normalise(source)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.mark.parametrize(("group", "version"), CATALOGUE.group_versions())
def test_v3_documents_are_self_contained(group: str, version: str) -> None:
    document = openapi_v3_document(group, version)
    assert document["openapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for resource in CATALOGUE.resources_in(group, version):
        assert resource.definition in schemas


def test_v3_index_keys() -> None:
    assert openapi_v3_paths()[:2] == ["api/v1", "apis/apps/v1"]
    assert "apis/rbac.authorization.k8s.io/v1" in openapi_v3_paths()


def test_patch_operations_advertise_field_validation() -> None:
    # kubectl sends fieldValidation=Strict only when the kind's PATCH operation lists it.
    document = openapi_v3_document("apps", "v1")
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "kind": "Deployment",
        "version": "v1",
    }
    assert {p["name"] for p in patch["parameters"]} >= {
        "fieldValidation",
        "dryRun",
        "fieldManager",
        "force",
    }
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    scale = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    core = openapi_v3_document("", "v1")
    assert "/api/v1/pods" in core["paths"]  # the all-namespaces list
    assert "/api/v1/namespaces/{namespace}/pods/{name}/log" in core["paths"]
    assert core["paths"]["/api/v1/nodes/{name}"]["get"]["operationId"] == "readCoreV1Node"


def test_v2_document_uses_definitions_and_plain_refs() -> None:
    document = openapi_v2_document()
    assert document["swagger"] == "2.0"
    text = json.dumps(document)
    assert "#/components/" not in text
    assert '"allOf"' not in text
    for ref in _refs(document):
        assert ref.removeprefix("#/definitions/") in document["definitions"], ref
    containers = document["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {
        "$ref": "#/definitions/io.k8s.api.core.v1.Container",
        "default": {},
    }
    quantity = document["definitions"]["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert quantity["type"] == "string"


def test_documents_are_deterministic() -> None:
    first = json.dumps(openapi_v3_document("", "v1"), sort_keys=False)
    assert json.dumps(openapi_v3_document("", "v1"), sort_keys=False) == first
