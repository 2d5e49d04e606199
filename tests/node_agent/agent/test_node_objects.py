"""The Node's object and status without a cluster: ``--node-label``/``--node-taint`` syntax,
capacity and allocatable (upstream's eviction reservations, overrides), the pressure
conditions, and the host facts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from attrs import evolve

from engenho.node_agent.host import go_arch, read_host_facts, simulated_facts
from engenho.node_agent.node import (
    NodeIdentity,
    node_conditions,
    node_object,
    node_resources,
    node_status,
    parse_label,
    parse_taint,
)
from engenho.schema.quantity import Quantity

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_labels_and_taints_parse_as_the_kubelet_flags() -> None:
    assert parse_label("zone=a") == ("zone", "a")
    assert parse_label("empty=") == ("empty", "")
    assert parse_taint("dedicated=db:NoSchedule") == {
        "key": "dedicated",
        "value": "db",
        "effect": "NoSchedule",
    }
    assert parse_taint("gpu:NoExecute") == {"key": "gpu", "effect": "NoExecute"}
    for bad in ("novalue", "=x"):
        with pytest.raises(ValueError, match="key=value"):
            parse_label(bad)
    for bad in ("k=v", "k=v:Sometimes", ":NoSchedule"):
        with pytest.raises(ValueError, match="taint"):
            parse_taint(bad)


def test_go_architectures() -> None:
    assert go_arch("x86_64") == "amd64" and go_arch("aarch64") == "arm64"


def test_capacity_allocatable_and_overrides(tmp_path: Path) -> None:
    facts = read_host_facts(tmp_path)
    capacity, allocatable = node_resources(facts, {})
    assert capacity["pods"] == "110" and capacity["hugepages-2Mi"] == "0"
    memory = Quantity.parse(capacity["memory"])
    assert Quantity.parse(allocatable["memory"]) == memory - Quantity.parse("100Mi")
    storage = Quantity.parse(capacity["ephemeral-storage"])
    assert Quantity.parse(allocatable["ephemeral-storage"]) <= storage
    capacity, allocatable = node_resources(facts, {"cpu": "64", "memory": "256Gi", "pods": "250"})
    assert capacity["cpu"] == "64" and capacity["memory"] == "256Gi" and capacity["pods"] == "250"
    assert allocatable["memory"] == "262044Mi"


def test_pressure_follows_the_eviction_thresholds(tmp_path: Path) -> None:
    facts = read_host_facts(tmp_path)
    low = evolve(facts, memory_available_bytes=50 * 2**20, storage_available_bytes=0)
    kinds = {c[0]: c for c in node_conditions(low)}
    assert kinds["MemoryPressure"][1:3] == ("True", "KubeletHasInsufficientMemory")
    assert kinds["DiskPressure"][1:3] == ("True", "KubeletHasDiskPressure")
    not_ready = {c[0]: c for c in node_conditions(facts, ready=(False, "runtime down"))}
    assert not_ready["Ready"] == ("Ready", "False", "KubeletNotReady", "runtime down")


def test_node_object_and_status(tmp_path: Path) -> None:
    facts = simulated_facts(read_host_facts(tmp_path), "sim-3")
    identity = NodeIdentity(
        name="sim-3",
        runtime_version="fake://1",
        labels={"role": "x"},
        taints=({"key": "k", "effect": "NoSchedule"},),
    )
    node = node_object(identity, facts, T0)
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "sim-3"
    assert node["metadata"]["labels"]["role"] == "x"
    assert node["spec"]["taints"] == [{"key": "k", "effect": "NoSchedule"}]
    status = node["status"]
    assert status["addresses"][1] == {"type": "Hostname", "address": "sim-3"}
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert facts.machine_id != simulated_facts(facts, "sim-4").machine_id
    previous = {c["type"]: c for c in status["conditions"]}
    later = node_status(identity, facts, previous, T0.replace(hour=1))
    ready = {c["type"]: c for c in later["conditions"]}["Ready"]
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert ready["lastHeartbeatTime"] == "2026-01-01T01:00:00Z"
