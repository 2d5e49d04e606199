"""Schema metadata: field lookup by path, the patch and list/map extensions strategic merge
patch and server-side apply need, named scalars, and the integrity of every definition."""

from __future__ import annotations

import pytest

from engenho.schema import (
    TypeKind,
    UnknownResourceError,
    definition,
    definition_for,
    field_schema,
)
from engenho.schema.model import TypeSpec
from engenho.schema.registry import DEFINITIONS

POD = "io.k8s.api.core.v1.Pod"
DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def test_patch_strategy_and_merge_keys() -> None:
    containers = field_schema(DEPLOYMENT, "spec.template.spec.containers")
    assert containers is not None
    assert (containers.patch_strategy, containers.patch_merge_key) == ("merge", "name")
    ports = field_schema(POD, "spec.containers[0].ports")
    assert ports is not None
    assert ports.patch_merge_key == "containerPort"
    assert ports.list_type == "map" and ports.list_map_keys == ("containerPort", "protocol")
    mounts = field_schema(POD, ["spec", "containers", "volumeMounts"])
    assert mounts is not None and mounts.patch_merge_key == "mountPath"
    tolerations = field_schema(POD, "spec.tolerations")
    assert tolerations is not None and tolerations.patch_strategy == ""
    finalizers = field_schema(POD, "metadata.finalizers")
    assert finalizers is not None and finalizers.patch_strategy == "merge"
    volumes = field_schema(POD, "spec.volumes")
    assert volumes is not None and volumes.patch_strategy == "merge,retainKeys"


def test_map_types_and_named_scalars() -> None:
    assert definition("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector").map_type == "atomic"
    target_port = field_schema("io.k8s.api.core.v1.Service", "spec.ports.targetPort")
    assert target_port is not None and target_port.type.kind is TypeKind.INT_OR_STRING
    limits = field_schema(POD, "spec.containers.resources.limits")
    assert limits is not None and limits.type.kind is TypeKind.MAP
    assert limits.type.items == TypeSpec(
        kind=TypeKind.QUANTITY, ref="io.k8s.apimachinery.pkg.api.resource.Quantity"
    )
    created = field_schema(POD, "metadata.creationTimestamp")
    assert created is not None and created.type.kind is TypeKind.STRING
    assert definition(created.type.ref).format == "date-time"
    protocol = field_schema(POD, "spec.containers.ports.protocol")
    assert protocol is not None and protocol.default == "TCP"
    assert protocol.type.enum == ("SCTP", "TCP", "UDP")


def test_paths_leaving_the_schema_return_none() -> None:
    assert field_schema(POD, "spec.nope") is None
    assert field_schema(POD, "spec.restartPolicy.deeper") is None
    with pytest.raises(UnknownResourceError):
        definition("io.k8s.api.core.v1.Nope")


def test_kinds_resolve_to_definitions() -> None:
    assert definition_for("v1", "Pod").name == POD
    assert definition_for("autoscaling/v1", "Scale").name == "io.k8s.api.autoscaling.v1.Scale"
    assert definition_for("policy/v1", "Eviction").class_name == "Eviction"
    with pytest.raises(UnknownResourceError, match='no kind "Frob" is registered for version "v1"'):
        definition_for("v1", "Frob")


def _refs(spec: TypeSpec) -> list[str]:
    found = [spec.ref] if spec.ref else []
    return found + (_refs(spec.items) if spec.items is not None else [])


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_definition_integrity(name: str) -> None:
    schema = DEFINITIONS[name]
    wire_names = [field.name for field in schema.fields]
    assert wire_names == sorted(wire_names)
    assert set(schema.required) == {f.name for f in schema.fields if f.required}
    for field in schema.fields:
        for ref in _refs(field.type):
            assert ref in DEFINITIONS, f"{name}.{field.name} points at missing {ref}"
        element = field.type.items
        if field.patch_merge_key and element is not None and element.kind is TypeKind.OBJECT:
            item_fields = {f.name for f in DEFINITIONS[element.ref].fields}
            assert field.patch_merge_key in item_fields, f"{name}.{field.name}"
        for key in field.list_map_keys:
            assert element is not None and key in {f.name for f in DEFINITIONS[element.ref].fields}


def test_one_definition_per_name_from_the_authority() -> None:
    # Core v1.29.2 is the authority for core.v1 and meta.v1 types, whichever document used them.
    for name, schema in DEFINITIONS.items():
        if name.startswith(("io.k8s.api.core.v1.", "io.k8s.apimachinery.")):
            assert schema.source == "api/v1.json", name
    assert DEFINITIONS["io.k8s.api.batch.v1.Job"].source == "apis/batch/v1.json"
    # Newer shared types that the v1.29.2 PodSpec never references are not emitted.
    assert "io.k8s.api.core.v1.AppArmorProfile" not in DEFINITIONS
