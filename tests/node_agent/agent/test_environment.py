"""Environment rules against upstream's (kubelet_pods.go ``makeEnvironmentVariables``,
``envvars.FromServices``, the downward API's ``ExtractFieldPathAsString`` and
``ExtractContainerResourceValue``), without a cluster."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from engenho.node_agent.environment import (
    EnvError,
    PodFacts,
    container_resource_value,
    expand_command,
    expand_static,
    field_path_value,
    format_map,
    is_env_var_name,
    referenced_objects,
    resolve_env,
    service_env,
)

POD: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "u-1",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"\n'},
    },
    "spec": {"nodeName": "n1", "serviceAccountName": "robot", "containers": []},
}
FACTS = PodFacts(
    POD,
    pod_ips=("10.42.0.5",),
    host_ips=("192.0.2.1",),
    allocatable={"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"},
)


def _service(name: str, namespace: str, ip: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": list(ports)},
    }


def test_service_variables_follow_envvars_from_services() -> None:
    services = [
        _service(
            "redis-primary",
            "shop",
            "10.43.0.11",
            {"name": "db", "port": 6379},
            {"name": "metrics", "port": 9121, "protocol": "UDP"},
        ),
        _service("kubernetes", "default", "10.43.0.1", {"name": "https", "port": 443}),
        _service("headless", "shop", "None", {"port": 80}),
        _service("elsewhere", "other", "10.43.0.12", {"port": 80}),
    ]
    variables = service_env(services, "shop")
    assert variables == {
        "KUBERNETES_SERVICE_HOST": "10.43.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.43.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.43.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.43.0.1",
        "REDIS_PRIMARY_SERVICE_HOST": "10.43.0.11",
        "REDIS_PRIMARY_SERVICE_PORT": "6379",
        "REDIS_PRIMARY_SERVICE_PORT_DB": "6379",
        "REDIS_PRIMARY_SERVICE_PORT_METRICS": "9121",
        "REDIS_PRIMARY_PORT": "tcp://10.43.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP": "tcp://10.43.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_PRIMARY_PORT_6379_TCP_PORT": "6379",
        "REDIS_PRIMARY_PORT_6379_TCP_ADDR": "10.43.0.11",
        "REDIS_PRIMARY_PORT_9121_UDP": "udp://10.43.0.11:9121",
        "REDIS_PRIMARY_PORT_9121_UDP_PROTO": "udp",
        "REDIS_PRIMARY_PORT_9121_UDP_PORT": "9121",
        "REDIS_PRIMARY_PORT_9121_UDP_ADDR": "10.43.0.11",
    }
    links_off = service_env(services, "shop", enable_service_links=False)
    assert set(links_off) == {k for k in variables if k.startswith("KUBERNETES_")}
    own = service_env(
        [*services, _service("kubernetes", "shop", "10.43.0.99", {"port": 1})], "shop"
    )
    assert own["KUBERNETES_SERVICE_HOST"] == "10.43.0.99", "the namespace's own wins"


def test_ipv6_service_addresses_are_bracketed() -> None:
    variables = service_env([_service("v6", "shop", "fd00::1", {"port": 80})], "shop")
    assert variables["V6_PORT"] == "tcp://[fd00::1]:80"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "web"),
        ("metadata.namespace", "shop"),
        ("metadata.uid", "u-1"),
        ("metadata.labels['tier']", "front"),
        ("metadata.labels['absent']", ""),
        ("metadata.annotations['note']", 'say "hi"\n'),
        ("metadata.labels", 'app="web"\ntier="front"'),
        ("metadata.annotations", 'note="say \\"hi\\"\\n"'),
        ("spec.nodeName", "n1"),
        ("spec.host", "n1"),
        ("spec.serviceAccountName", "robot"),
        ("status.podIP", "10.42.0.5"),
        ("status.podIPs", "10.42.0.5"),
        ("status.hostIP", "192.0.2.1"),
        ("status.hostIPs", "192.0.2.1"),
    ],
)
def test_field_paths(path: str, value: str) -> None:
    assert field_path_value(FACTS, path) == value


def test_field_path_errors() -> None:
    with pytest.raises(EnvError, match=r"field label not supported: spec\.containers"):
        field_path_value(FACTS, "spec.containers")
    with pytest.raises(EnvError, match="does not support subscript"):
        field_path_value(FACTS, "metadata.name['x']")
    with pytest.raises(EnvError, match=r"unsupported fieldPath: status\.phase"):
        field_path_value(FACTS, "status.phase")


def test_format_map_quotes_as_go() -> None:
    assert format_map({"b": "2", "a": "tab\there", "c": "é"}) == 'a="tab\\there"\nb="2"\nc="é"'


@pytest.mark.parametrize(
    ("resource", "divisor", "resources", "value"),
    [
        ("limits.cpu", None, {"limits": {"cpu": "250m"}}, "1"),
        ("limits.cpu", "1m", {"limits": {"cpu": "250m"}}, "250"),
        ("requests.cpu", "1m", {"requests": {"cpu": "100m"}}, "100"),
        ("limits.memory", "1Mi", {"limits": {"memory": "64Mi"}}, "64"),
        ("limits.memory", "1Gi", {"limits": {"memory": "1.5Gi"}}, "2"),
        ("limits.memory", None, {}, str(8 * 2**30)),
        ("limits.cpu", None, {}, "4"),
        ("requests.memory", None, {}, "0"),
        ("limits.ephemeral-storage", "1Gi", {}, "100"),
    ],
)
def test_resource_values(
    resource: str, divisor: str | None, resources: dict[str, Any], value: str
) -> None:
    selector: dict[str, Any] = {"resource": resource}
    if divisor:
        selector["divisor"] = divisor
    container = {"name": "app", "resources": resources}
    assert container_resource_value(selector, container, FACTS.allocatable) == value


def test_unknown_resources_are_refused() -> None:
    with pytest.raises(EnvError, match=r"unsupported container resource : limits\.gpu"):
        container_resource_value({"resource": "limits.gpu"}, {"name": "a"}, {})


def test_env_var_names() -> None:
    for good in ("A", "a.b-c_d", "_x", "-x", ".x"):
        assert is_env_var_name(good), good
    for bad in ("1a", "a b", ".", "..", "..x", "", "a=b"):
        assert not is_env_var_name(bad), bad


def _resolve(container: dict[str, Any], **objects: Any) -> dict[str, str]:
    return resolve_env(
        container,
        FACTS,
        config_maps=objects.get("config_maps", {}),
        secrets=objects.get("secrets", {}),
        services=objects.get("services", ()),
    ).as_dict()


CM = {"data": {"a": "1", "b": "2", "3c": "bad"}}
SECRET = {"data": {"token": base64.b64encode(b"t0k").decode(), "raw": "not base64!"}}


def test_env_overrides_env_from_and_services_come_last() -> None:
    container = {
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "P_"}, {"secretRef": {"name": "s"}}],
        "env": [
            {"name": "P_a", "value": "override $(P_b)"},
            {"name": "KUBERNETES_SERVICE_HOST", "value": "mine"},
            {"name": "REF", "value": "$(KUBERNETES_SERVICE_PORT)"},
        ],
    }
    services = [_service("kubernetes", "default", "10.43.0.1", {"port": 443})]
    result = resolve_env(
        container, FACTS, config_maps={"cm": CM}, secrets={"s": SECRET}, services=services
    )
    env = result.as_dict()
    assert env["P_a"] == "override 2" and env["P_3c"] == "bad" and env["token"] == "t0k"
    assert env["KUBERNETES_SERVICE_HOST"] == "mine", "the pod's own wins over service variables"
    assert env["REF"] == "443", "service variables are expandable"
    names = [name for name, _ in result.env]
    assert names.index("KUBERNETES_SERVICE_PORT") > names.index("REF")
    assert not result.warnings


def test_invalid_env_from_keys_are_skipped_with_a_warning() -> None:
    result = resolve_env(
        {"name": "app", "envFrom": [{"configMapRef": {"name": "cm"}}]},
        FACTS,
        config_maps={"cm": CM},
        secrets={},
    )
    assert "3c" not in result.as_dict()
    assert result.warnings == (
        (
            "InvalidEnvironmentVariableNames",
            "Keys [3c] from the EnvFrom configMap shop/cm were skipped since they are "
            "considered invalid environment variable names.",
        ),
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"configMapKeyRef": {"name": "gone", "key": "a"}}, 'configmap "gone" not found'),
        (
            {"configMapKeyRef": {"name": "cm", "key": "zz"}},
            "couldn't find key zz in ConfigMap shop/cm",
        ),
        ({"secretKeyRef": {"name": "gone", "key": "a"}}, 'secret "gone" not found'),
        ({"secretKeyRef": {"name": "s", "key": "zz"}}, "couldn't find key zz in Secret shop/s"),
    ],
)
def test_missing_sources_name_what_is_missing(env: dict[str, Any], message: str) -> None:
    container = {"name": "app", "env": [{"name": "X", "valueFrom": env}]}
    with pytest.raises(EnvError) as caught:
        _resolve(
            container, config_maps={"cm": CM, "gone": None}, secrets={"s": SECRET, "gone": None}
        )
    assert caught.value.message == message
    optional = {key: {**value, "optional": True} for key, value in env.items()}
    container = {"name": "app", "env": [{"name": "X", "valueFrom": optional}]}
    assert "X" not in _resolve(container, config_maps={"cm": CM}, secrets={"s": SECRET})


def test_a_missing_env_from_source_is_an_error_unless_optional() -> None:
    container = {"name": "app", "envFrom": [{"secretRef": {"name": "gone"}}]}
    with pytest.raises(EnvError, match='secret "gone" not found'):
        _resolve(container, secrets={"gone": None})
    container = {"name": "app", "envFrom": [{"secretRef": {"name": "gone", "optional": True}}]}
    assert _resolve(container, secrets={"gone": None}) == {}


def test_secrets_that_are_not_base64_are_taken_as_they_are() -> None:
    container = {
        "name": "app",
        "env": [{"name": "R", "valueFrom": {"secretKeyRef": {"name": "s", "key": "raw"}}}],
    }
    assert _resolve(container, secrets={"s": SECRET})["R"] == "not base64!"


def test_empty_values_and_references() -> None:
    container = {
        "name": "app",
        "env": [{"name": "EMPTY", "value": ""}, {"name": "E2", "value": "[$(EMPTY)]"}],
    }
    assert _resolve(container) == {"EMPTY": "", "E2": "[]"}


def test_referenced_objects() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "b"}}],
        "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "d", "key": "k"}}},
            {"name": "Z", "value": "z"},
        ],
    }
    assert referenced_objects(container) == ({"a", "c"}, {"b", "d"})


def test_command_and_args_expand_against_the_final_environment() -> None:
    container = {"command": ["sh", "-c", "echo $(A) $$(A) $(NOPE)"], "args": ["$(B)"]}
    assert expand_command(container, [("A", "1"), ("B", "two")]) == (
        ("sh", "-c", "echo 1 $(A) $(NOPE)"),
        ("two",),
    )


def test_exec_probe_commands_expand_against_literal_values_only() -> None:
    container = {
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
        ]
    }
    assert expand_static(["$(A)", "$(B)"], container) == ("1", "$(B)")
