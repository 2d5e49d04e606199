"""validate(): structural findings from the schema and the per-kind rules users hit first,
with upstream's field paths, reasons and messages; unknown-field detection."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engenho.schema import (
    Cause,
    CauseReason,
    UnknownResourceError,
    default,
    format_invalid,
    unknown_fields,
    validate,
)

from .helpers import deployment, service, three_container_pod


def messages(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [str(cause) for cause in validate(obj, old)]


def test_a_typical_pod_is_valid_before_and_after_defaulting() -> None:
    pod = three_container_pod()
    assert validate(pod) == []
    assert validate(default(pod)) == []


def test_structural_type_errors_have_paths() -> None:
    pod = three_container_pod()
    pod["spec"]["containers"][1]["ports"][0]["containerPort"] = "9901"
    pod["spec"]["containers"][0]["env"] = {"MODE": "prod"}
    pod["spec"]["hostNetwork"] = "yes"
    pod["metadata"]["labels"] = ["app"]
    causes = validate(pod)
    assert [(c.reason, c.field) for c in causes] == [
        (CauseReason.TYPE_INVALID, "metadata.labels"),
        (CauseReason.TYPE_INVALID, "spec.containers[0].env"),
        (CauseReason.TYPE_INVALID, "spec.containers[1].ports[0].containerPort"),
        (CauseReason.TYPE_INVALID, "spec.hostNetwork"),
    ]
    assert str(causes[2]) == (
        'spec.containers[1].ports[0].containerPort: Invalid value: "9901": must be of type integer'
    )


def test_int32_range_and_enum_and_quantity_and_time() -> None:
    pod = three_container_pod()
    pod["spec"]["containers"][0]["ports"][0]["containerPort"] = 2**31
    pod["spec"]["restartPolicy"] = "Sometimes"
    pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "one"
    pod["metadata"]["creationTimestamp"] = "yesterday"
    assert messages(pod) == [
        'metadata.creationTimestamp: Invalid value: "yesterday": must be an RFC 3339 date-time '
        "(2006-01-02T15:04:05Z)",
        "spec.containers[0].ports[0].containerPort: Invalid value: 2147483648: must fit in a "
        "32-bit signed integer",
        'spec.containers[0].resources.limits[cpu]: Invalid value: "one": quantities must match '
        "the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", '
        '"OnFailure"',
        # The semantic rule sees the same number; both findings are true.
        "spec.containers[0].ports[0].containerPort: Invalid value: 2147483648: must be between 1 "
        "and 65535, inclusive",
    ]


def test_pod_requires_containers_names_and_images() -> None:
    pod = three_container_pod()
    pod["spec"]["containers"][0]["image"] = ""
    del pod["spec"]["containers"][1]["name"]
    assert messages(pod) == [
        "spec.containers[1].name: Required value",
        "spec.containers[0].image: Required value",
    ]
    empty = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": []},
    }
    assert messages(empty) == ["spec.containers: Required value"]
    no_spec = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert messages(no_spec) == ["spec.containers: Required value"]


def test_pod_container_rules() -> None:
    pod = three_container_pod()
    containers = pod["spec"]["containers"]
    containers[2]["name"] = "app"
    containers[0]["ports"].append({"name": "http", "containerPort": 0})
    containers[0]["env"].append({"name": "1BAD", "value": "x"})
    containers[2]["volumeMounts"][0]["name"] = "missing"
    containers[1]["resources"]["requests"] = {"cpu": "2"}
    containers[0]["image"] = " nginx"
    pod["spec"]["volumes"].append({"name": "logs", "emptyDir": {}, "hostPath": {"path": "/"}})
    assert messages(pod) == [
        'spec.volumes[2].name: Duplicate value: "logs"',
        "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
        'spec.containers[0].image: Invalid value: " nginx": must not have leading or '
        "trailing whitespace",
        "spec.containers[0].ports[1].containerPort: Invalid value: 0: must be between "
        "1 and 65535, inclusive",
        'spec.containers[0].ports[1].name: Duplicate value: "http"',
        'spec.containers[0].env[2].name: Invalid value: "1BAD": a valid environment variable name '
        "must consist of alphabetic characters, digits, '_', '-', or '.', and must not "
        "start with a "
        "digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation "
        "is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
        'spec.containers[1].resources.requests[cpu]: Invalid value: "2": must be less '
        "than or equal "
        "to cpu limit of 500m",
        'spec.containers[2].name: Duplicate value: "app"',
        'spec.containers[2].volumeMounts[0].name: Not found: "missing"',
    ]


def test_object_meta_rules() -> None:
    pod = three_container_pod()
    pod["metadata"] = {
        "name": "Web_0",
        "namespace": "Default",
        "labels": {"bad key": "ok", "good": "bad value!"},
        "annotations": {"a": "x" * 262144},
        "finalizers": ["custom"],
    }
    causes = validate(pod)
    assert [c.field for c in causes] == [
        "metadata.name",
        "metadata.namespace",
        "metadata.labels",
        "metadata.labels",
        "metadata.annotations",
        "metadata.finalizers[0]",
    ]
    assert causes[0].message.startswith('Invalid value: "Web_0": a lowercase RFC 1123 subdomain')
    assert causes[2].message.startswith('Invalid value: "bad key": name part must consist of')
    assert causes[4].message == "Too long: must have at most 262144 bytes"
    nameless = three_container_pod()
    del nameless["metadata"]["name"]
    assert messages(nameless) == ["metadata.name: Required value: name or generateName is required"]
    nameless["metadata"]["generateName"] = "web-"
    assert messages(nameless) == []


def test_cluster_scoped_objects_may_not_carry_a_namespace() -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "a.b", "namespace": "x"},
    }
    assert [(c.reason, c.field) for c in validate(namespace)] == [
        (CauseReason.INVALID, "metadata.name"),
        (CauseReason.FORBIDDEN, "metadata.namespace"),
    ]


def test_deployment_selector_rules() -> None:
    mismatch = deployment()
    mismatch["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert messages(mismatch) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        "`selector` does not match template `labels`"
    ]
    missing = deployment()
    del missing["spec"]["selector"]
    assert messages(missing) == ["spec.selector: Required value"]
    empty = deployment()
    empty["spec"]["selector"] = {}
    assert [c.field for c in validate(empty)] == ["spec.selector"]
    restart = deployment()
    restart["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert messages(restart) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    ]


def test_deployment_strategy_rules() -> None:
    obj = default(deployment())
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": "0%"}
    obj["spec"]["replicas"] = -1
    assert messages(obj) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 "
        "when `maxSurge` is 0",
    ]
    obj["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    obj["spec"]["replicas"] = 1
    assert messages(obj) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
        "`type` is 'Recreate'"
    ]


def test_deployment_selector_is_immutable() -> None:
    old = default(deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"]["matchLabels"]["tier"] = "web"
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    assert messages(new, old) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", '
        '"tier":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
    ]
    new["spec"]["selector"] = copy.deepcopy(old["spec"]["selector"])
    assert messages(new, old) == []


def test_object_meta_update_rules() -> None:
    old = default(three_container_pod())
    old["metadata"] |= {
        "uid": "u1",
        "deletionTimestamp": "2024-01-01T00:00:00Z",
        "finalizers": ["a.io/x"],
    }
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "renamed"
    new["metadata"]["finalizers"] = ["a.io/x", "b.io/y"]
    assert messages(new, old) == [
        'metadata.name: Invalid value: "renamed": field is immutable',
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object "
        "is being deleted",
    ]


def test_pod_spec_updates_are_restricted() -> None:
    old = default(three_container_pod())
    image_change = copy.deepcopy(old)
    image_change["spec"]["containers"][0]["image"] = "registry.example.com:5000/web/app:1.5.0"
    assert validate(image_change, old) == []
    port_change = copy.deepcopy(old)
    port_change["spec"]["containers"][0]["ports"][0]["containerPort"] = 9090
    [cause] = validate(port_change, old)
    assert (cause.reason, cause.field) == (CauseReason.FORBIDDEN, "spec")
    assert cause.message.startswith("Forbidden: pod updates may not change fields other than")


def test_scheduling_gates_may_only_be_removed() -> None:
    old = default(three_container_pod())
    old["spec"]["schedulingGates"] = [{"name": "a.io/wait"}, {"name": "b.io/quota"}]
    released = copy.deepcopy(old)
    released["spec"]["schedulingGates"] = [{"name": "b.io/quota"}]
    released["spec"]["nodeSelector"] = {"zone": "a"}  # narrowed while still gated
    assert validate(released, old) == []
    added = copy.deepcopy(old)
    added["spec"]["schedulingGates"].append({"name": "c.io/more"})
    [cause] = validate(added, old)
    assert (cause.reason, cause.field) == (CauseReason.FORBIDDEN, "spec")
    ungated = copy.deepcopy(old)
    del ungated["spec"]["schedulingGates"]
    assert validate(ungated, old) == []
    moved = copy.deepcopy(ungated)
    moved["spec"]["nodeSelector"] = {"zone": "b"}
    [cause] = validate(moved, ungated)
    assert cause.field == "spec", "an ungated pod's node selector stays fixed"


def test_service_rules() -> None:
    no_ports = service()
    no_ports["spec"]["ports"] = []
    assert messages(no_ports) == ["spec.ports: Required value"]
    headless = service()
    headless["spec"] = {"clusterIP": "None", "selector": {"app": "x"}}
    assert messages(headless) == []
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName"},
    }
    assert messages(external) == ["spec.externalName: Required value"]
    ports = service()
    ports["spec"]["ports"] = [{"port": 80}, {"port": 70000, "name": "b"}, {"port": 80, "name": "b"}]
    ports["metadata"]["name"] = "1web"
    ports["spec"]["clusterIP"] = "10.0.0.300"
    causes = messages(ports)
    assert causes[0].startswith('metadata.name: Invalid value: "1web": a DNS-1035 label')
    assert causes[1:] == [
        "spec.ports[0].name: Required value",
        "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.ports[2].name: Duplicate value: "b"',
        'spec.ports[2]: Duplicate value: {"port":80,"protocol":"TCP"}',
        "spec.clusterIP: Invalid value: \"10.0.0.300\": must be empty, 'None', or a "
        "valid IP address",
    ]


def test_service_cluster_ip_is_immutable() -> None:
    old = default(service())
    old["spec"]["clusterIP"] = "10.96.0.12"
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = ""
    assert messages(new, old) == ['spec.clusterIP: Invalid value: "": field is immutable']
    to_external = copy.deepcopy(new)
    to_external["spec"] |= {"type": "ExternalName", "externalName": "example.com", "ports": []}
    assert messages(to_external, old) == []


def test_config_map_and_secret_rules() -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"bad key": "1", "dup": "x"},
        "binaryData": {"dup": "eA=="},
    }
    causes = validate(config_map)
    assert [c.field for c in causes] == ["data[bad key]", "data[dup]"]
    assert causes[1].message == 'Invalid value: "dup": duplicate of key present in binaryData'
    tls = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "t"},
        "type": "kubernetes.io/tls",
        "data": {},
    }
    assert messages(tls) == ["data[tls.crt]: Required value", "data[tls.key]: Required value"]
    not_base64 = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"k": "%%%"},
    }
    assert messages(not_base64) == [
        'data[k]: Invalid value: "<bytes>": must be base64-encoded bytes'
    ]
    old = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "immutable": True,
        "data": {"k": "eA=="},
    }
    new = copy.deepcopy(old) | {"data": {"k": "eQ=="}, "type": "kubernetes.io/basic-auth"}
    assert messages(new, old) == [
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable',
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


def test_rbac_rules() -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "x"}],
    }
    assert messages(binding) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
        'subjects[1].kind: Unsupported value: "Robot": supported values: '
        '"ServiceAccount", "User", "Group"',
    ]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "default"},
        "rules": [{"verbs": ["get"]}, {"apiGroups": [""], "resources": ["pods"]}],
    }
    assert messages(role) == [
        "rules[1].verbs: Required value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[0].resources: Required value: resource rules must supply at least one resource",
    ]


def test_job_and_cron_job_rules() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }
    assert messages(default(copy.deepcopy(job))) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported '
        'values: "OnFailure", "Never"'
    ]
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "n" * 53},
        "spec": {"schedule": "61 * * * *", "jobTemplate": {"spec": copy.deepcopy(job["spec"])}},
    }
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    causes = messages(cron)
    assert causes[-2:] == [
        f'metadata.name: Invalid value: "{"n" * 53}": must be no more than 52 characters',
        "spec.schedule: Invalid value: \"61 * * * *\": failed to parse '61': value out "
        "of range [0, 59]",
    ]


def test_status_causes_and_invalid_message() -> None:
    pod = three_container_pod()
    pod["spec"]["containers"][0]["image"] = ""
    [cause] = validate(pod)
    assert cause == Cause(CauseReason.REQUIRED, "spec.containers[0].image", "Required value")
    assert cause.to_status_cause() == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers[0].image",
    }
    assert (
        format_invalid("Pod", "web-0", [cause])
        == 'Pod "web-0" is invalid: spec.containers[0].image: Required value'
    )
    two = [cause, Cause(CauseReason.INVALID, "metadata.name", "Invalid value")]
    assert format_invalid("Pod", "p", two).endswith(
        "[spec.containers[0].image: Required value, metadata.name: Invalid value]"
    )


def test_unknown_fields_are_found_and_pruned() -> None:
    pod = three_container_pod()
    pod["spec"]["foo"] = 1
    pod["spec"]["containers"][1]["imagePullPolcy"] = "Always"
    pod["metadata"]["labelz"] = {}
    pod["spec"]["containers"][0]["resources"]["limits"]["anything/goes"] = (
        "1"  # a map, not a struct
    )
    assert unknown_fields(pod) == [
        "metadata.labelz",
        "spec.containers[1].imagePullPolcy",
        "spec.foo",
    ]
    assert validate(pod) == []  # unknown fields are a fieldValidation matter, not a cause
    assert unknown_fields(pod, prune=True) == [
        "metadata.labelz",
        "spec.containers[1].imagePullPolcy",
        "spec.foo",
    ]
    assert unknown_fields(pod) == []
    assert "foo" not in pod["spec"]


def test_nulls_count_as_absent() -> None:
    pod = three_container_pod()
    pod["metadata"]["creationTimestamp"] = None
    pod["spec"]["nodeName"] = None
    assert validate(pod) == []
    pod["spec"]["containers"][0]["name"] = None
    assert messages(pod) == ["spec.containers[0].name: Required value"]


def test_unknown_kinds_raise() -> None:
    with pytest.raises(UnknownResourceError, match='no kind "Frob" is registered for version "v1"'):
        validate({"apiVersion": "v1", "kind": "Frob"})
    with pytest.raises(UnknownResourceError):
        default({"kind": "Pod"})
    with pytest.raises(UnknownResourceError):
        unknown_fields({"apiVersion": "v1"})
