"""Planning EndpointSlices (a pure function): every wanted endpoint lands in exactly one slice,
no slice holds more than the limit, endpoints stay in the slice they are in, a second plan over
the result writes nothing, a Service without endpoints keeps one placeholder, slices of an
earlier Service of the same name or of a family no longer served are replaced, and a slice to
delete is reused for one to create."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engenho.reconcilers.endpointslices import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Desired,
    SlicePlan,
    desired_endpoints,
    plan_slices,
    port_key,
)

SERVICE = {
    "metadata": {"name": "web", "namespace": "default", "uid": "svc-1", "labels": {"app": "web"}},
    "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "web"}},
}
PORTS = {
    "a": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    "b": [{"name": "http", "port": 9090, "protocol": "TCP"}],
}
LIMIT = 5


def _endpoint(pod: int, ready: bool) -> dict[str, Any]:
    return {
        "addresses": [f"10.0.{pod // 250}.{pod % 250 + 1}"],
        "conditions": {"ready": ready, "serving": ready, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": "default", "name": f"p{pod}", "uid": f"u{pod}"},
        "nodeName": "node-1",
    }


def _desired(pods: dict[int, tuple[str, bool]]) -> dict[str, Desired]:
    """Pods by number -> (port mapping, ready), as desired_endpoints would group them."""
    desired: Desired = {}
    for pod, (mapping, ready) in sorted(pods.items()):
        endpoint = _endpoint(pod, ready)
        key = f"ports-{mapping}"
        _, endpoints = desired.setdefault(key, (PORTS[mapping], {}))
        endpoints[("default", f"p{pod}", "", tuple(endpoint["addresses"]))] = endpoint
    # plan_slices groups by the canonical key desired_endpoints uses; rebuild with it.
    return {"IPv4": {port_key(ports): (ports, eps) for ports, eps in desired.values()}}


_names = itertools.count()


def _apply(slices: list[dict[str, Any]], plan: SlicePlan) -> list[dict[str, Any]]:
    """The slices after the plan's writes (names and uids given as the API would)."""
    by_name = {s["metadata"]["name"]: s for s in slices}
    for doomed in plan.delete:
        del by_name[doomed["metadata"]["name"]]
    for body in plan.update:
        assert body["metadata"]["name"] in by_name, "updates only existing slices"
        by_name[body["metadata"]["name"]] = copy.deepcopy(body)
    for body in plan.create:
        created = copy.deepcopy(body)
        number = next(_names)
        created["metadata"]["name"] = f"{body['metadata']['generateName']}{number}"
        created["metadata"]["uid"] = f"slice-{number}"
        by_name[created["metadata"]["name"]] = created
    return list(by_name.values())


def _placement(slices: list[dict[str, Any]]) -> dict[str, str]:
    """Pod name -> the slice holding it (each at most once)."""
    placed: dict[str, str] = {}
    for slice_ in slices:
        for endpoint in slice_["endpoints"]:
            pod = endpoint["targetRef"]["name"]
            assert pod not in placed, f"{pod} is in two slices"
            placed[pod] = slice_["metadata"]["name"]
    return placed


def _check(slices: list[dict[str, Any]], pods: dict[int, tuple[str, bool]]) -> None:
    placed = _placement(slices)
    assert placed.keys() == {f"p{pod}" for pod in pods}
    for slice_ in slices:
        assert len(slice_["endpoints"]) <= LIMIT
        assert slice_["metadata"]["labels"][SERVICE_NAME_LABEL] == "web"
        assert slice_["metadata"]["labels"][MANAGED_BY_LABEL] == CONTROLLER_NAME
        assert slice_["metadata"]["ownerReferences"][0]["uid"] == "svc-1"
        for endpoint in slice_["endpoints"]:
            pod = int(endpoint["targetRef"]["name"][1:])
            mapping, ready = pods[pod]
            assert slice_["ports"] == PORTS[mapping], "endpoints sit with their ports"
            assert endpoint == _endpoint(pod, ready)
    if pods:
        assert all(s["endpoints"] for s in slices), "no empty slice besides the placeholder"
    else:
        assert len(slices) == 1 and slices[0]["endpoints"] == [] and slices[0]["ports"] == []


_states = st.dictionaries(
    st.integers(0, 40), st.tuples(st.sampled_from(["a", "b"]), st.booleans()), max_size=30
)


@given(st.lists(_states, min_size=1, max_size=5))
def test_a_sequence_of_changes_converges_stably(states: list[dict[int, tuple[str, bool]]]) -> None:
    slices: list[dict[str, Any]] = []
    previous: dict[int, tuple[str, bool]] = {}
    for pods in states:
        before = _placement(slices)
        plan = plan_slices(SERVICE, slices, _desired(pods), LIMIT)
        slices = _apply(slices, plan)
        _check(slices, pods)
        after = _placement(slices)
        for pod, (mapping, _ready) in pods.items():
            name = f"p{pod}"
            if pod in previous and previous[pod][0] == mapping and name in before:
                assert after[name] == before[name], f"{name} moved between slices"
        assert plan_slices(SERVICE, slices, _desired(pods), LIMIT).empty, "a second plan writes"
        previous = pods


@given(
    _states,
    st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=8), max_size=6),
    st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_any_starting_slices_are_repaired(
    pods: dict[int, tuple[str, bool]], groups: list[list[int]], foreign: list[bool]
) -> None:
    """Slices as someone else might have left them: duplicates, strangers, overfull, owned by
    an earlier Service of the same name. (Not empty: upstream keeps an empty slice of a port
    mapping still in use, to be filled later, and so does the planner.)"""
    slices = []
    for number, members in enumerate(groups):
        owner = "svc-old" if foreign[number] else "svc-1"
        slices.append(
            {
                "metadata": {
                    "name": f"web-old{number}",
                    "uid": f"old-{number}",
                    "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME},
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Service", "name": "web", "uid": owner}
                    ],
                },
                "addressType": "IPv4",
                "ports": PORTS["a"],
                "endpoints": [_endpoint(pod, True) for pod in members],
            }
        )
    plan = plan_slices(SERVICE, slices, _desired(pods), LIMIT)
    repaired = _apply(slices, plan)
    _check(repaired, pods)
    assert plan_slices(SERVICE, repaired, _desired(pods), LIMIT).empty


def test_more_than_a_slice_of_endpoints_and_a_change_touches_one_slice() -> None:
    pods = dict.fromkeys(range(250), ("a", True))
    plan = plan_slices(SERVICE, [], _desired(pods), 100)
    assert [len(s["endpoints"]) for s in plan.create] == [100, 100, 50]
    slices = _apply([], plan)
    pods[17] = ("a", False)
    change = plan_slices(SERVICE, slices, _desired(pods), 100)
    assert not change.create and not change.delete and len(change.update) == 1
    slices = _apply(slices, change)
    del pods[200]
    pods[300] = ("a", True)
    change = plan_slices(SERVICE, slices, _desired(pods), 100)
    assert not change.create and not change.delete
    (updated,) = change.update
    names = [e["targetRef"]["name"] for e in updated["endpoints"]]
    assert "p300" in names and "p200" not in names, "the new pod takes the freed place"


def test_placeholder_is_kept_and_then_reused() -> None:
    plan = plan_slices(SERVICE, [], _desired({}), LIMIT)
    (placeholder,) = plan.create
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    assert placeholder["metadata"]["generateName"] == "web-"
    assert placeholder["metadata"]["labels"] == {
        "app": "web",
        SERVICE_NAME_LABEL: "web",
        MANAGED_BY_LABEL: CONTROLLER_NAME,
    }
    assert placeholder["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": "svc-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    slices = _apply([], plan)
    assert plan_slices(SERVICE, slices, _desired({}), LIMIT).empty
    filled = plan_slices(SERVICE, slices, _desired({1: ("a", True)}), LIMIT)
    assert not filled.create and not filled.delete, "the placeholder becomes the first slice"
    assert filled.update[0]["metadata"]["name"] == slices[0]["metadata"]["name"]


def test_service_label_changes_reach_every_slice_and_headless_is_marked() -> None:
    pods = dict.fromkeys(range(12), ("a", True))
    slices = _apply([], plan_slices(SERVICE, [], _desired(pods), LIMIT))
    relabelled = copy.deepcopy(SERVICE)
    relabelled["metadata"]["labels"] = {"app": "web", "tier": "front"}
    plan = plan_slices(relabelled, slices, _desired(pods), LIMIT)
    assert len(plan.update) == len(slices) and not plan.create and not plan.delete
    assert all(s["metadata"]["labels"]["tier"] == "front" for s in plan.update)
    headless = copy.deepcopy(SERVICE)
    headless["spec"]["clusterIP"] = "None"
    (slice_,) = plan_slices(headless, [], _desired({}), LIMIT).create
    assert slice_["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_slices_of_a_family_no_longer_served_are_replaced() -> None:
    v6 = {
        "metadata": {"name": "old-v6", "uid": "s6", "labels": {}},
        "addressType": "IPv6",
        "ports": [],
        "endpoints": [],
    }
    plan = plan_slices(SERVICE, [v6], _desired({1: ("a", True)}), LIMIT)
    assert [s["metadata"]["name"] for s in plan.delete] == ["old-v6"]
    assert len(plan.create) == 1 and plan.create[0]["addressType"] == "IPv4"


def test_desired_endpoints_conditions_zone_and_missing_nodes() -> None:
    service = copy.deepcopy(SERVICE)
    service["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080}]
    nodes = {"node-1": {"metadata": {"labels": {"topology.kubernetes.io/zone": "z1"}}}}

    def pod(name: str, node: str, ready: bool, terminating: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"u-{name}"}
        if terminating:
            meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        return {
            "metadata": meta,
            "spec": {"nodeName": node},
            "status": {"podIP": f"10.0.0.{len(name)}", "conditions": [condition]},
        }

    pods = [
        pod("a", "node-1", True),
        pod("bb", "node-1", False),
        pod("ccc", "node-1", True, terminating=True),
        pod("dddd", "node-9", True),
    ]
    missing: set[str] = set()
    desired = desired_endpoints(service, pods, nodes.get, "IPv4", missing)
    ((ports, endpoints),) = desired.values()
    assert ports == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    conditions = {e["targetRef"]["name"]: e["conditions"] for e in endpoints.values()}
    assert conditions == {
        "a": {"ready": True, "serving": True, "terminating": False},
        "bb": {"ready": False, "serving": False, "terminating": False},
        "ccc": {"ready": False, "serving": True, "terminating": True},
    }
    assert {e["zone"] for e in endpoints.values()} == {"z1"}
    assert missing == {"node-9"}, "a pod on an unknown node is left out"
    service["spec"]["publishNotReadyAddresses"] = True
    published = desired_endpoints(service, pods, nodes.get, "IPv4")
    ((_, endpoints),) = published.values()
    assert {e["targetRef"]["name"]: e["conditions"]["ready"] for e in endpoints.values()} == {
        "a": True,
        "bb": True,
        "ccc": True,
        "dddd": True,
    }


def test_a_memo_recomputes_only_what_changed_and_agrees_with_no_memo() -> None:
    service = copy.deepcopy(SERVICE)
    service["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080}]
    nodes = {"node-1": {"metadata": {"resourceVersion": "1", "labels": {}}}}

    def pod(number: int, version: int, ready: bool) -> dict[str, Any]:
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        meta = {
            "name": f"p{number}",
            "namespace": "default",
            "uid": f"u{number}",
            "resourceVersion": str(version),
        }
        return {
            "metadata": meta,
            "spec": {"nodeName": "node-1"},
            "status": {"podIP": f"10.0.0.{number + 1}", "conditions": [condition]},
        }

    memo: dict[str, Any] = {}
    pods = [pod(n, 10, True) for n in range(5)]
    first = desired_endpoints(service, pods, nodes.get, "IPv4", memo=memo)
    assert first == desired_endpoints(service, pods, nodes.get, "IPv4")
    assert set(memo) == {f"u{n}" for n in range(5)}
    # One pod changes (a new version), one goes; a node's zone appears (a new node version).
    pods = [pod(0, 11, False), *pods[1:4]]
    nodes["node-1"] = {
        "metadata": {"resourceVersion": "2", "labels": {"topology.kubernetes.io/zone": "z"}}
    }
    again = desired_endpoints(service, pods, nodes.get, "IPv4", memo=memo)
    assert again == desired_endpoints(service, pods, nodes.get, "IPv4")
    ((_, endpoints),) = again.values()
    assert {e["targetRef"]["name"]: e["conditions"]["ready"] for e in endpoints.values()} == {
        "p0": False,
        "p1": True,
        "p2": True,
        "p3": True,
    }
    assert {e.get("zone") for e in endpoints.values()} == {"z"}
    assert set(memo) == {f"u{n}" for n in range(4)}, "the memo holds the pods seen last"
