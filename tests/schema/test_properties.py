"""Property tests: generated valid objects validate (before and after defaulting) and round-trip
through the typed models; each rule-breaking mutation yields a cause at the mutated path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engenho.schema import CauseReason, default, from_wire, to_wire, validate

Json = dict[str, Any]

dns_label = st.from_regex(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
label_name = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?", fullmatch=True)
label_key = st.one_of(
    label_name, st.tuples(dns_label, label_name).map(lambda p: f"{p[0]}.io/{p[1]}")
)
labels = st.dictionaries(label_key, st.one_of(st.just(""), label_name), max_size=4)
images = st.sampled_from(
    [
        "nginx",
        "nginx:1.25",
        "busybox:latest",
        "ghcr.io/example/app:2.3.1",
        "localhost:5000/x@sha256:abc",
    ]
)
port_names = st.from_regex(r"[a-z]{1,6}(-[a-z0-9]{1,4})?", fullmatch=True)
quantities = st.builds(
    lambda n, suffix: f"{n}{suffix}",
    st.integers(1, 4096),
    st.sampled_from(["", "m", "Mi", "Gi", "k", "M"]),
)


@st.composite
def resources(draw: st.DrawFn) -> Json:
    limit = draw(st.integers(2, 4000))
    request = draw(st.integers(1, limit))
    memory = draw(quantities)
    return {"limits": {"cpu": f"{limit}m", "memory": memory}, "requests": {"cpu": f"{request}m"}}


@st.composite
def containers(draw: st.DrawFn, names: list[str], volumes: list[str]) -> list[Json]:
    built = []
    for name in names:
        container: Json = {"name": name, "image": draw(images)}
        numbers = draw(st.lists(st.integers(1, 65535), max_size=3, unique=True))
        port_labels = draw(
            st.lists(port_names, min_size=len(numbers), max_size=len(numbers), unique=True)
        )
        if numbers:
            container["ports"] = [
                {"containerPort": n, "name": p, "protocol": draw(st.sampled_from(["TCP", "UDP"]))}
                for n, p in zip(numbers, port_labels, strict=True)
            ]
        if draw(st.booleans()):
            container["resources"] = draw(resources())
        if volumes and draw(st.booleans()):
            container["volumeMounts"] = [{"name": v, "mountPath": f"/mnt/{v}"} for v in volumes]
        if draw(st.booleans()):
            container["env"] = [{"name": "MODE", "value": draw(st.text(max_size=5))}]
        built.append(container)
    return built


@st.composite
def pod_specs(draw: st.DrawFn) -> Json:
    names = draw(st.lists(dns_label, min_size=1, max_size=4, unique=True))
    volumes = draw(st.lists(dns_label, max_size=2, unique=True))
    spec: Json = {"containers": draw(containers(names, volumes))}
    if volumes:
        spec["volumes"] = [{"name": v, "emptyDir": {}} for v in volumes]
    if draw(st.booleans()):
        spec["nodeSelector"] = draw(labels)
    return spec


@st.composite
def pods(draw: st.DrawFn) -> Json:
    metadata: Json = {"name": draw(dns_label), "namespace": draw(dns_label), "labels": draw(labels)}
    spec = draw(pod_specs())
    spec["restartPolicy"] = draw(st.sampled_from(["Always", "OnFailure", "Never"]))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@st.composite
def deployments(draw: st.DrawFn) -> Json:
    selector = draw(labels.filter(bool))
    extra = draw(labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": draw(dns_label), "namespace": "default"},
        "spec": {
            "replicas": draw(st.integers(0, 50)),
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": extra | selector}, "spec": draw(pod_specs())},
        },
    }


@st.composite
def services(draw: st.DrawFn) -> Json:
    numbers = draw(st.lists(st.integers(1, 65535), min_size=1, max_size=4, unique=True))
    names = draw(st.lists(dns_label, min_size=len(numbers), max_size=len(numbers), unique=True))
    ports = [
        {"name": name, "port": n, "targetPort": draw(st.one_of(st.integers(1, 65535), port_names))}
        for name, n in zip(names, numbers, strict=True)
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": draw(dns_label), "namespace": "default"},
        "spec": {
            "type": draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"])),
            "selector": draw(labels),
            "ports": ports,
        },
    }


objects = st.one_of(pods(), deployments(), services())


@given(objects)
def test_generated_objects_validate(obj: Json) -> None:
    assert validate(obj) == []
    assert validate(default(obj)) == []


@given(objects)
def test_generated_objects_round_trip_through_models(obj: Json) -> None:
    default(obj)
    assert to_wire(from_wire(obj)) == obj


# A mutation breaks one rule and names the (field, reason) the cause must carry.
Mutation = Callable[[Json, st.DrawFn], tuple[str, CauseReason]]


def _container(obj: Json, draw: st.DrawFn) -> tuple[int, Json]:
    index = draw(st.integers(0, len(obj["spec"]["containers"]) - 1))
    return index, obj["spec"]["containers"][index]


def clear_image(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    index, container = _container(obj, draw)
    container["image"] = ""
    return f"spec.containers[{index}].image", CauseReason.REQUIRED


def bad_container_name(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    index, container = _container(obj, draw)
    container["name"] = draw(st.sampled_from(["Bad_Name", "-x", "x" * 64, "a.b"]))
    return f"spec.containers[{index}].name", CauseReason.INVALID


def duplicate_container_name(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    containers = obj["spec"]["containers"]
    containers.append(copy.deepcopy(containers[0]) | {"image": "busybox"})
    return f"spec.containers[{len(containers) - 1}].name", CauseReason.DUPLICATE


def port_out_of_range(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    index, container = _container(obj, draw)
    container["ports"] = [{"containerPort": draw(st.sampled_from([0, -1, 65536, 100000]))}]
    return f"spec.containers[{index}].ports[0].containerPort", CauseReason.INVALID


def port_as_string(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    index, container = _container(obj, draw)
    container["ports"] = [{"containerPort": str(draw(st.integers(1, 65535)))}]
    return f"spec.containers[{index}].ports[0].containerPort", CauseReason.TYPE_INVALID


def unsupported_restart_policy(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    obj["spec"]["restartPolicy"] = draw(st.sampled_from(["always", "Sometimes", "Forever"]))
    return "spec.restartPolicy", CauseReason.NOT_SUPPORTED


def bad_label(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    obj["metadata"].setdefault("labels", {})[
        draw(st.sampled_from(["a b", "-x", "a/b/c", "/x"]))
    ] = "v"
    return "metadata.labels", CauseReason.INVALID


def request_over_limit(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    index, container = _container(obj, draw)
    limit = draw(st.integers(1, 1000))
    container["resources"] = {"limits": {"cpu": f"{limit}m"}, "requests": {"cpu": f"{limit + 1}m"}}
    return f"spec.containers[{index}].resources.requests[cpu]", CauseReason.INVALID


def bad_name(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    obj["metadata"]["name"] = draw(st.sampled_from(["UPPER", "under_score", "trailing-", ""]))
    reason = CauseReason.REQUIRED if obj["metadata"]["name"] == "" else CauseReason.INVALID
    return "metadata.name", reason


def unknown_mount(obj: Json, draw: st.DrawFn) -> tuple[str, CauseReason]:
    index, container = _container(obj, draw)
    container["volumeMounts"] = [{"name": "not-a-volume-0", "mountPath": "/x"}]
    return f"spec.containers[{index}].volumeMounts[0].name", CauseReason.NOT_FOUND


POD_MUTATIONS = [
    clear_image,
    bad_container_name,
    duplicate_container_name,
    port_out_of_range,
    port_as_string,
    unsupported_restart_policy,
    bad_label,
    request_over_limit,
    bad_name,
    unknown_mount,
]


@given(pods(), st.sampled_from(POD_MUTATIONS), st.data())
def test_pod_mutations_are_caught_at_their_path(
    pod: Json, mutation: Mutation, data: st.DataObject
) -> None:
    default(pod)
    field, reason = mutation(pod, data.draw)
    found = [(cause.field, cause.reason) for cause in validate(pod)]
    assert (field, reason) in found, found


@given(deployments(), st.data())
def test_deployment_mutations_are_caught_at_their_path(
    deployment: Json, data: st.DataObject
) -> None:
    spec = deployment["spec"]
    choice = data.draw(st.sampled_from(["labels", "replicas", "selector-gone"]))
    if choice == "labels":
        spec["template"]["metadata"]["labels"] = {}
        expected = ("spec.template.metadata.labels", CauseReason.INVALID)
    elif choice == "replicas":
        spec["replicas"] = data.draw(st.integers(max_value=-1))
        expected = ("spec.replicas", CauseReason.INVALID)
    else:
        del spec["selector"]
        expected = ("spec.selector", CauseReason.REQUIRED)
    assert expected in [(cause.field, cause.reason) for cause in validate(default(deployment))]


@given(services(), st.data())
def test_service_mutations_are_caught_at_their_path(service: Json, data: st.DataObject) -> None:
    ports = service["spec"]["ports"]
    index = data.draw(st.integers(0, len(ports) - 1))
    choice = data.draw(st.sampled_from(["port", "type", "name"]))
    if choice == "port":
        ports[index]["port"] = data.draw(st.sampled_from([0, 65536]))
        expected = (f"spec.ports[{index}].port", CauseReason.INVALID)
    elif choice == "type":
        service["spec"]["type"] = "Internal"
        expected = ("spec.type", CauseReason.NOT_SUPPORTED)
    else:
        ports[index]["name"] = "Not_A_Label"
        expected = (f"spec.ports[{index}].name", CauseReason.INVALID)
    assert expected in [(cause.field, cause.reason) for cause in validate(service)]
