"""Typed models: every corpus manifest parses into its attrs model and serialises back exactly;
the models are frozen and slotted with snake_case attributes; the converter is explicit."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
import pytest

from engenho.schema import (
    CONVERTER,
    Quantity,
    default,
    from_wire,
    make_converter,
    model_for,
    to_wire,
    validate,
)
from engenho.schema.generated.models import MODELS, apps_v1, coordination_v1, core_v1, rbac_v1
from engenho.schema.registry import DEFINITIONS

from .helpers import corpus

CORPUS = corpus()


@pytest.mark.parametrize(("name", "manifest"), CORPUS, ids=[name for name, _ in CORPUS])
def test_corpus_round_trips_losslessly(name: str, manifest: dict[str, Any]) -> None:
    model = from_wire(manifest)
    assert type(model) is model_for(manifest["apiVersion"], manifest["kind"])
    assert to_wire(model) == manifest


@pytest.mark.parametrize(("name", "manifest"), CORPUS, ids=[name for name, _ in CORPUS])
def test_corpus_is_valid_and_defaulting_keeps_it_valid(name: str, manifest: dict[str, Any]) -> None:
    assert validate(copy.deepcopy(manifest)) == []
    defaulted = default(copy.deepcopy(manifest))
    assert validate(defaulted) == []
    assert to_wire(from_wire(defaulted)) == defaulted


def test_corpus_covers_the_issue_kinds() -> None:
    kinds = {manifest["kind"] for _, manifest in CORPUS}
    assert kinds >= {
        "Deployment",
        "Service",
        "Pod",
        "ConfigMap",
        "Job",
        "Role",
        "RoleBinding",
        "ClusterRole",
    }


def test_models_are_typed_and_frozen() -> None:
    deployment = from_wire(next(m for _, m in CORPUS if m["kind"] == "Deployment"))
    assert isinstance(deployment, apps_v1.Deployment)
    assert deployment.spec is not None
    container = (
        deployment.spec.template.spec.containers[0] if deployment.spec.template.spec else None
    )
    assert isinstance(container, core_v1.Container)
    assert container.image_pull_policy is core_v1.ImagePullPolicy.IF_NOT_PRESENT
    assert container.resources is not None and container.resources.limits is not None
    assert container.resources.limits["cpu"] == Quantity.parse("1000m")
    assert isinstance(container.ports, tuple)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        container.name = "other"  # type: ignore[misc]
    assert not hasattr(container, "__dict__")


def test_wire_names_are_mapped_explicitly() -> None:
    role = from_wire(next(m for _, m in CORPUS if m["kind"] == "ClusterRole"))
    assert isinstance(role, rbac_v1.ClusterRole)
    assert role.rules is not None and role.rules[0].non_resource_urls == ("/metrics", "/metrics/*")
    for name, model in MODELS.items():
        wire = {a.metadata["wire"] for a in attrs.fields(model)}
        assert wire == {f.name for f in DEFINITIONS[name].fields}, name


def test_times_keep_their_precision() -> None:
    lease = from_wire(next(m for _, m in CORPUS if m["kind"] == "Lease"))
    assert isinstance(lease, coordination_v1.Lease) and lease.spec is not None
    assert lease.spec.renew_time == datetime(2024, 5, 1, 10, 0, 7, 123456, tzinfo=UTC)
    assert to_wire(lease)["spec"]["renewTime"] == "2024-05-01T10:00:07.123456Z"
    pod = core_v1.Pod(
        metadata=None,
        spec=None,
        status=core_v1.PodStatus(start_time=datetime(2024, 1, 2, 3, 4, 5, 999, tzinfo=UTC)),
    )  # type: ignore[arg-type]
    assert to_wire(pod) == {"status": {"startTime": "2024-01-02T03:04:05Z"}}


def test_building_models_in_code() -> None:
    service = core_v1.Service(
        api_version="v1",
        kind="Service",
        metadata=core_v1.meta_v1.ObjectMeta(name="web", namespace="shop"),
        spec=core_v1.ServiceSpec(ports=(core_v1.ServicePort(port=80, target_port="http"),)),
    )
    wire = to_wire(service)
    assert wire == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}]},
    }
    assert validate(default(wire)) == []


def test_explicit_nulls_read_as_absent() -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "creationTimestamp": None},
    }
    assert to_wire(from_wire(manifest)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
    }


def test_malformed_input_is_rejected_with_detail() -> None:
    with pytest.raises(cattrs.errors.ClassValidationError):
        from_wire({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": "x"}]}})
    with pytest.raises(cattrs.errors.ClassValidationError):
        from_wire(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "spec": {"ports": [{"port": 80, "targetPort": 1.5}]},
            }
        )


def test_converters_are_never_the_global_one() -> None:
    assert CONVERTER is not cattrs.global_converter
    assert make_converter() is not CONVERTER
    fresh = make_converter()
    manifest = next(m for _, m in CORPUS if m["kind"] == "StatefulSet")
    assert fresh.unstructure(fresh.structure(manifest, apps_v1.StatefulSet)) == manifest
