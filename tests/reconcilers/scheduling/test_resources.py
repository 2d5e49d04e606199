"""What a pod asks for and what a node offers: containers summed, init containers and sidecars
as upstream's PodRequests counts them, overhead added, exact rounding, the non-zero defaults
scores use, and allocatable with its fallback to capacity."""

from __future__ import annotations

from typing import Any

from engenho.reconcilers.scheduling.resources import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    is_scalar,
    node_allocatable,
    pod_requests,
)


def container(name: str, *, restart: str | None = None, **requests: str) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "image": "x"}
    if requests:
        found["resources"] = {"requests": {k.replace("_", "-"): v for k, v in requests.items()}}
    if restart:
        found["restartPolicy"] = restart
    return found


def test_containers_add_up() -> None:
    spec = {"containers": [container("a", cpu="250m", memory="64Mi"), container("b", cpu="1")]}
    requests = pod_requests(spec)
    assert (requests.cpu, requests.memory) == (1250, 64 * 2**20)
    # The non-zero request fills in b's missing memory.
    assert (requests.nonzero_cpu, requests.nonzero_memory) == (
        1250,
        64 * 2**20 + DEFAULT_MEMORY_REQUEST,
    )


def test_a_pod_without_requests_asks_for_nothing_but_scores_as_default() -> None:
    requests = pod_requests({"containers": [container("a")]})
    assert requests.empty
    assert (requests.nonzero_cpu, requests.nonzero_memory) == (
        DEFAULT_MILLI_CPU_REQUEST,
        DEFAULT_MEMORY_REQUEST,
    )


def test_init_containers_need_their_peak() -> None:
    spec = {
        "initContainers": [container("big", cpu="2"), container("small", cpu="100m")],
        "containers": [container("main", cpu="500m", memory="1Gi")],
    }
    requests = pod_requests(spec)
    assert (requests.cpu, requests.memory) == (2000, 2**30)


def test_sidecars_run_beside_everything_after_them() -> None:
    spec = {
        "initContainers": [
            container("sidecar", restart="Always", cpu="300m"),
            container("setup", cpu="1"),
        ],
        "containers": [container("main", cpu="500m")],
    }
    # Steady state: main + sidecar = 800m; while setup runs: setup + sidecar = 1300m.
    assert pod_requests(spec).cpu == 1300
    spec["initContainers"][1] = container("setup", cpu="100m")
    assert pod_requests(spec).cpu == 800


def test_overhead_is_added() -> None:
    spec = {"containers": [container("a", cpu="100m")], "overhead": {"cpu": "250m"}}
    assert pod_requests(spec).cpu == 350


def test_sums_are_exact_before_rounding_up() -> None:
    spec = {"containers": [container("a", cpu="0.0004"), container("b", cpu="0.0004")]}
    assert pod_requests(spec).cpu == 1  # 0.8m rounds up to 1m, not 1m + 1m
    assert pod_requests({"containers": [container("a", memory="1.5")]}).memory == 2


def test_scalar_resources() -> None:
    spec = {
        "containers": [
            container("a", **{"example.com/gpu": "1", "hugepages-2Mi": "4Mi", "nonsense": "3"})
        ]
    }
    requests = pod_requests(spec)
    assert requests.scalars == (("example.com/gpu", 1), ("hugepages-2Mi", 4 * 2**20))
    assert is_scalar("attachable-volumes-aws-ebs") and not is_scalar("memory")


def test_unreadable_quantities_are_reported() -> None:
    assert pod_requests({"containers": [container("a", cpu="1 core")]}).unreadable == ("cpu",)


def test_allocatable_falls_back_to_capacity_and_rounds() -> None:
    status = {"capacity": {"cpu": "3500m", "memory": "1Gi", "pods": "110", "x.io/y": "2"}}
    offered = node_allocatable(status)
    assert (offered.cpu, offered.memory, offered.pods) == (3500, 2**30, 110)
    assert dict(offered.scalars) == {"x.io/y": 2}
    both = {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3"}}
    assert node_allocatable(both).cpu == 3000  # millicores
    assert node_allocatable({}).pods == 0
