"""The subsets of an Endpoints object as upstream's endpoints controller computes them: ready
and not-ready addresses, terminating and finished pods, publishNotReadyAddresses, named ports
resolved per pod, repacking by port set, hostnames, headless Services without ports, address
families, and truncation at 1,000 addresses."""

from __future__ import annotations

from typing import Any

from engenho.reconcilers.endpoints import desired_subsets, truncate_subsets


def _service(**spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    spec.setdefault("clusterIP", "10.96.0.10")
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def _pod(
    name: str,
    ip: str | None,
    ready: bool = True,
    ports: list[dict[str, Any]] | None = None,
    **more: Any,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": more.pop("phase", "Running"),
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", **more.pop("meta", {})}
    spec = {"nodeName": "node-1", "containers": [{"name": "c", "ports": ports or []}], **more}
    return {"metadata": meta, "spec": spec, "status": status}


def _address(name: str, ip: str, **extra: Any) -> dict[str, Any]:
    return {
        "ip": ip,
        "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": name, "uid": f"uid-{name}"},
        **extra,
    }


HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}


def test_ready_and_not_ready_addresses_share_a_subset() -> None:
    pods = [_pod("b", "10.0.0.2"), _pod("a", "10.0.0.10"), _pod("c", "10.0.0.3", ready=False)]
    assert desired_subsets(_service(), pods) == [
        {
            "addresses": [_address("a", "10.0.0.10"), _address("b", "10.0.0.2")],
            "notReadyAddresses": [_address("c", "10.0.0.3")],
            "ports": [HTTP],
        }
    ]


def test_pods_without_ip_finished_or_terminating_are_left_out() -> None:
    pods = [
        _pod("no-ip", None),
        _pod("done", "10.0.0.1", phase="Succeeded"),
        _pod("failed", "10.0.0.2", phase="Failed"),
        _pod("going", "10.0.0.3", meta={"deletionTimestamp": "2024-01-01T00:00:00Z"}),
    ]
    assert desired_subsets(_service(), pods) == []


def test_publish_not_ready_addresses_lists_every_pod_as_ready() -> None:
    pods = [
        _pod("a", "10.0.0.1", ready=False),
        _pod("b", "10.0.0.2", meta={"deletionTimestamp": "2024-01-01T00:00:00Z"}),
    ]
    subsets = desired_subsets(_service(publishNotReadyAddresses=True), pods)
    assert subsets == [
        {"addresses": [_address("a", "10.0.0.1"), _address("b", "10.0.0.2")], "ports": [HTTP]}
    ]


def test_a_named_port_resolves_per_pod_and_pods_without_it_are_left_out_of_it() -> None:
    service = _service(
        ports=[
            {"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
            {"name": "metrics", "port": 9000, "targetPort": 9090, "protocol": "TCP"},
        ]
    )
    pods = [
        _pod("a", "10.0.0.1", ports=[{"name": "web", "containerPort": 8080}]),
        _pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 8081}]),
        _pod("c", "10.0.0.3"),
    ]
    metrics = {"name": "metrics", "port": 9090, "protocol": "TCP"}
    subsets = desired_subsets(service, pods)
    assert sorted(subsets, key=lambda s: s["ports"][0]["port"]) == [
        {"addresses": [_address("a", "10.0.0.1")], "ports": [{**HTTP, "port": 8080}]},
        {"addresses": [_address("b", "10.0.0.2")], "ports": [{**HTTP, "port": 8081}]},
        {
            "addresses": [
                _address("a", "10.0.0.1"),
                _address("b", "10.0.0.2"),
                _address("c", "10.0.0.3"),
            ],
            "ports": [metrics],
        },
    ]


def test_ports_serving_the_same_addresses_share_a_subset() -> None:
    service = _service(
        ports=[
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            {"port": 80, "targetPort": 8080, "protocol": "TCP", "appProtocol": "http"},
        ]
    )
    subsets = desired_subsets(service, [_pod("a", "10.0.0.1")])
    assert subsets == [
        {
            "addresses": [_address("a", "10.0.0.1")],
            "ports": [
                {"port": 8080, "protocol": "TCP", "appProtocol": "http"},
                {"name": "https", "port": 8443, "protocol": "TCP"},
            ],
        }
    ]


def test_hostname_for_pods_in_the_services_subdomain() -> None:
    pods = [_pod("a", "10.0.0.1", hostname="web-0", subdomain="web")]
    (subset,) = desired_subsets(_service(clusterIP="None"), pods)
    assert subset["addresses"] == [_address("a", "10.0.0.1", hostname="web-0")]


def test_a_headless_service_without_ports_lists_addresses_without_ports() -> None:
    pods = [_pod("a", "10.0.0.1"), _pod("b", "10.0.0.2", ready=False)]
    assert desired_subsets(_service(clusterIP="None", ports=[]), pods) == [
        {"addresses": [_address("a", "10.0.0.1")], "notReadyAddresses": [_address("b", "10.0.0.2")]}
    ]
    assert desired_subsets(_service(ports=[]), pods) == [], "only headless Services may"


def test_only_addresses_of_the_services_family() -> None:
    dual = _pod("a", "10.0.0.1")
    dual["status"]["podIPs"] = [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]
    v6 = _service(clusterIP="fd00::10", ipFamilies=["IPv6"])
    assert desired_subsets(v6, [dual])[0]["addresses"] == [_address("a", "fd00::1")]
    assert desired_subsets(v6, [_pod("b", "10.0.0.2")]) == []


def test_truncation_keeps_ready_addresses_first_in_proportion() -> None:
    def addresses(prefix: str, count: int) -> list[dict[str, Any]]:
        return [{"ip": f"{prefix}.{i // 250}.{i % 250}"} for i in range(count)]

    subsets = [
        {"addresses": addresses("10.1", 600), "notReadyAddresses": addresses("10.2", 300)},
        {"addresses": addresses("10.3", 200), "notReadyAddresses": addresses("10.4", 100)},
    ]
    assert truncate_subsets(subsets, capacity=1000)
    assert [len(s["addresses"]) for s in subsets] == [600, 200]
    assert sum(len(s.get("notReadyAddresses", [])) for s in subsets) == 200
    assert [len(s["notReadyAddresses"]) for s in subsets] == [150, 50]

    too_many_ready = [{"addresses": addresses("10.1", 900)}, {"addresses": addresses("10.2", 300)}]
    assert truncate_subsets(too_many_ready, capacity=1000)
    assert [len(s["addresses"]) for s in too_many_ready] == [750, 250]
    assert not truncate_subsets([{"addresses": addresses("10.1", 1000)}], capacity=1000)
