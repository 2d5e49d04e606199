"""Selectable fields per resource (contract §18.2): the field sets and their rendered values
for real-shaped objects, and refusal of fields a resource does not offer."""

from __future__ import annotations

from typing import Any

import pytest

from engenho.selectors import (
    UnsupportedFieldError,
    check_supported,
    field_getter,
    parse_field_selector,
    supported_fields,
)

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {
        "nodeName": "node-1",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "hostNetwork": True,
        "containers": [{"name": "c", "image": "nginx"}],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.0.0.7",
        "podIPs": [{"ip": "10.0.0.7"}, {"ip": "fd00::7"}],
    },
}


def test_pod_fields() -> None:
    assert field_getter("", "pods", True)(POD) == {
        "metadata.name": "web-1",
        "metadata.namespace": "default",
        "spec.nodeName": "node-1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.0.0.7",
        "status.podIPs": "",
        "status.nominatedNodeName": "",
    }


def test_pending_pod_fields_default_like_go_zero_values() -> None:
    pending = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}, "status": {}}
    fields = field_getter("", "pods", True)(pending)
    assert fields["spec.nodeName"] == ""
    assert fields["spec.hostNetwork"] == "false"
    assert fields["status.podIP"] == ""
    only_ips = {"status": {"podIPs": [{"ip": "10.1.1.1"}]}}
    assert field_getter("", "pods", True)(only_ips)["status.podIP"] == "10.1.1.1"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("spec.nodeName=node-1", True),
        ("spec.nodeName=", False),
        ("spec.nodeName=node-1,status.phase!=Succeeded,status.phase!=Failed", True),
        ("status.phase=Running", True),
        ("spec.hostNetwork=true", True),
        ("metadata.name=web-1,metadata.namespace=default", True),
        ("metadata.name=web-2", False),
    ],
)
def test_what_clients_send_for_pods(selector: str, expected: bool) -> None:
    parsed = parse_field_selector(selector)
    check_supported(parsed, "", "pods", True)
    assert parsed.matches(field_getter("", "pods", True)(POD)) is expected


def test_event_fields_and_source_fallback() -> None:
    event = {
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "namespace": "default",
            "name": "web-1",
            "uid": "1234",
            "apiVersion": "v1",
            "resourceVersion": "42",
            "fieldPath": "spec.containers{c}",
        },
        "reason": "Scheduled",
        "reportingComponent": "default-scheduler",
        "type": "Normal",
    }
    fields = field_getter("", "events", True)(event)
    assert fields == {
        "metadata.name": "e",
        "metadata.namespace": "default",
        "involvedObject.kind": "Pod",
        "involvedObject.namespace": "default",
        "involvedObject.name": "web-1",
        "involvedObject.uid": "1234",
        "involvedObject.apiVersion": "v1",
        "involvedObject.resourceVersion": "42",
        "involvedObject.fieldPath": "spec.containers{c}",
        "reason": "Scheduled",
        "reportingComponent": "default-scheduler",
        "source": "default-scheduler",
        "type": "Normal",
    }
    event["source"] = {"component": "kubelet"}
    assert field_getter("", "events", True)(event)["source"] == "kubelet"


@pytest.mark.parametrize(
    ("group", "resource", "namespaced", "obj", "expected"),
    [
        ("", "secrets", True, {"type": "Opaque"}, {"type": "Opaque"}),
        ("", "namespaces", False, {"status": {"phase": "Active"}}, {"status.phase": "Active"}),
        ("", "nodes", False, {"spec": {"unschedulable": True}}, {"spec.unschedulable": "true"}),
        ("", "nodes", False, {"spec": {}}, {"spec.unschedulable": "false"}),
        ("apps", "replicasets", True, {"status": {"replicas": 3}}, {"status.replicas": "3"}),
        ("apps", "replicasets", True, {"status": {}}, {"status.replicas": "0"}),
        ("", "replicationcontrollers", True, {"status": {"replicas": 2}}, {"status.replicas": "2"}),
        ("batch", "jobs", True, {"status": {"succeeded": 1}}, {"status.successful": "1"}),
        (
            "certificates.k8s.io",
            "certificatesigningrequests",
            False,
            {"spec": {"signerName": "kubernetes.io/kubelet-serving"}},
            {"spec.signerName": "kubernetes.io/kubelet-serving"},
        ),
        ("", "configmaps", True, {"data": {"a": "b"}}, {}),
        ("stable.example.com", "crontabs", True, {"spec": {"cron": "* * * * *"}}, {}),
        ("rbac.authorization.k8s.io", "clusterroles", False, {}, {}),
    ],
)
def test_kind_fields(
    group: str, resource: str, namespaced: bool, obj: dict[str, Any], expected: dict[str, str]
) -> None:
    obj = {"metadata": {"name": "o", **({"namespace": "ns"} if namespaced else {})}, **obj}
    metadata = {"metadata.name": "o", **({"metadata.namespace": "ns"} if namespaced else {})}
    assert field_getter(group, resource, namespaced)(obj) == {**metadata, **expected}
    assert supported_fields(group, resource, namespaced) == set(metadata) | set(expected)


@pytest.mark.parametrize(
    ("selector", "group", "resource", "namespaced", "unsupported", "own_fields"),
    [
        ("spec.foo=bar", "", "pods", True, "spec.foo", True),
        ("metadata.name=a,spec.nodeName=n", "", "configmaps", True, "spec.nodeName", False),
        ("metadata.namespace=default", "", "nodes", False, "metadata.namespace", True),
        ("status.replicas=1", "apps", "deployments", True, "status.replicas", False),
        ("involvedObject.name=x", "events.k8s.io", "events", True, "involvedObject.name", False),
        ("b=1,a=2", "", "pods", True, "a", True),  # the first in selector order
        ("=x", "", "pods", True, "", True),
    ],
)
def test_unsupported_fields_are_refused(
    selector: str, group: str, resource: str, namespaced: bool, unsupported: str, own_fields: bool
) -> None:
    """Kinds with their own field conversion and kinds with only the metadata default word the
    refusal as upstream does, each its own way."""
    with pytest.raises(UnsupportedFieldError) as caught:
        check_supported(parse_field_selector(selector), group, resource, namespaced)
    if own_fields:
        assert str(caught.value) == f"field label not supported: {unsupported}"
    else:
        assert str(caught.value) == (
            f'"{unsupported}" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"'
        )
    assert caught.value.field == unsupported


def test_empty_selector_is_always_supported() -> None:
    check_supported(parse_field_selector(""), "", "configmaps", True)
