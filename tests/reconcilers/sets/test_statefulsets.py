"""The StatefulSet controller in process, with the real scheduler and a stand-in kubelet:
stable names and identity, OrderedReady creation and scale-down (checked at every step a pod
watcher saw), Parallel, rolling updates with a partition, OnDelete, claims from
volumeClaimTemplates with their retention policy, failed pods recreated, adoption, and the
ControllerRevision history (rollback, limit)."""

from __future__ import annotations

import asyncio
from typing import Any

from engenho.schema import CATALOGUE

from .harness import PODS, Harness, Recorder, container_template, eventually, is_ready, saw

STS = CATALOGUE.get("apps", "v1", "statefulsets")
REVISIONS = CATALOGUE.get("apps", "v1", "controllerrevisions")
CLAIMS = CATALOGUE.get("", "v1", "persistentvolumeclaims")


def stateful_set(name: str, replicas: int, image: str = "nginx", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": f"{name}-headless",
            "selector": {"matchLabels": labels},
            "template": container_template(labels, image),
            **spec,
        },
    }


async def _status(harness: Harness, name: str = "web") -> dict[str, Any]:
    return (await harness.get(STS, name)).get("status") or {}


async def _settled(harness: Harness, replicas: int, name: str = "web") -> dict[str, Any]:
    """Wait until the set reports ``replicas`` pods, all ready, updated and current."""

    async def check() -> dict[str, Any] | None:
        obj = await harness.get(STS, name)
        status = obj.get("status") or {}
        done = (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and status.get("replicas", 0) == replicas
            and status.get("readyReplicas", 0) == replicas
            and status.get("updatedReplicas", 0) == replicas
            and status.get("currentRevision") == status.get("updateRevision")
        )
        return status if done else None

    result: dict[str, Any] = await eventually(check, message=f"{name} never settled")
    return result


def _at_most_one_unready(recorder: Recorder) -> None:
    for pods in recorder.states():
        unready = sorted(name for name, pod in pods.items() if not is_ready(pod))
        assert len(unready) <= 1, f"more than one pod not ready at once: {unready}"


def _revision(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"]["controller-revision-hash"])


async def _pod(harness: Harness, name: str) -> dict[str, Any]:
    return await harness.get(PODS, name)


async def test_ordered_ready_creates_pods_in_order_with_stable_identity(
    stateful: Harness,
) -> None:
    async with Recorder(stateful.registry, "app=web") as recorder:
        sts = await stateful.create(STS, stateful_set("web", 3))
        status = await _settled(stateful, 3)
    assert recorder.sequence("ADDED") == ["web-0", "web-1", "web-2"]
    _at_most_one_unready(recorder)
    assert status["availableReplicas"] == 3
    assert status["collisionCount"] == 0
    assert status["currentReplicas"] == 3
    for ordinal in range(3):
        pod = await _pod(stateful, f"web-{ordinal}")
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{ordinal}"
        assert labels["apps.kubernetes.io/pod-index"] == str(ordinal)
        assert labels["controller-revision-hash"] == status["updateRevision"]
        assert pod["spec"]["hostname"] == f"web-{ordinal}"
        assert pod["spec"]["subdomain"] == "web-headless"
        [owner] = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("StatefulSet", "web", sts.uid)
        assert owner["controller"] is True
    revisions = await stateful.items(REVISIONS)
    assert [r["metadata"]["name"] for r in revisions] == [status["updateRevision"]]
    assert revisions[0]["revision"] == 1
    assert "controller.kubernetes.io/hash" in revisions[0]["metadata"]["labels"]
    await saw(
        stateful,
        "web",
        ("Normal", "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful"),
    )


async def test_ordered_ready_waits_for_each_pod_to_be_ready(stateful: Harness) -> None:
    held = {"web-1"}

    def verdict(pod: dict[str, Any]) -> str:
        return "unready" if pod["metadata"]["name"] in held else "ready"

    await stateful.kubelet.again(verdict)
    async with Recorder(stateful.registry, "app=web") as recorder:
        await stateful.create(STS, stateful_set("web", 3))

        async def stuck() -> bool:
            status = await _status(stateful)
            return status.get("replicas") == 2 and status.get("readyReplicas") == 1

        await eventually(stuck)
        await asyncio.sleep(0.3)  # give a wrong controller time to create web-2
        assert [p["metadata"]["name"] for p in await stateful.pods()] == ["web-0", "web-1"]
        held.clear()
        await stateful.kubelet.again()
        await _settled(stateful, 3)
    _at_most_one_unready(recorder)


async def test_ordered_scale_down_removes_the_highest_ordinal_first(stateful: Harness) -> None:
    await stateful.create(STS, stateful_set("web", 4))
    await _settled(stateful, 4)
    async with Recorder(stateful.registry, "app=web") as recorder:
        await stateful.patch(STS, "web", {"spec": {"replicas": 1}})
        await _settled(stateful, 1)
    assert [p["metadata"]["name"] for p in await stateful.pods()] == ["web-0"]
    assert recorder.sequence("DELETING") == ["web-3", "web-2", "web-1"]
    for pods in recorder.states():
        going = [n for n, p in pods.items() if p["metadata"].get("deletionTimestamp")]
        assert len(going) <= 1, f"more than one pod terminating at once: {going}"
    await saw(
        stateful,
        "web",
        ("Normal", "SuccessfulDelete", "delete Pod web-3 in StatefulSet web successful"),
    )


async def test_parallel_creates_and_deletes_without_waiting(stateful: Harness) -> None:
    await stateful.kubelet.again(lambda _pod: None)  # pods stay pending
    await stateful.create(STS, stateful_set("web", 3, podManagementPolicy="Parallel"))

    async def all_there() -> bool:
        return len(await stateful.pods("app=web")) == 3

    await eventually(all_there)
    assert not any(is_ready(p) for p in await stateful.pods())
    await stateful.patch(STS, "web", {"spec": {"replicas": 0}})

    async def none_left() -> bool:
        return not await stateful.pods("app=web")

    await eventually(none_left)


async def test_rolling_update_honours_the_partition(stateful: Harness) -> None:
    body = stateful_set(
        "web",
        3,
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
    )
    await stateful.create(STS, body)
    first = (await _settled(stateful, 3))["currentRevision"]
    async with Recorder(stateful.registry, "app=web") as recorder:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}}
        await stateful.patch(STS, "web", patch, kind="strategic")

        async def only_the_last_updated() -> dict[str, Any] | None:
            status = await _status(stateful)
            ok = status.get("updatedReplicas") == 1 and status.get("readyReplicas") == 3
            return status if ok else None

        status = await eventually(only_the_last_updated)
        second = status["updateRevision"]
        assert second != first
        assert status["currentRevision"] == first
        assert status["currentReplicas"] == 2
        revisions = {p["metadata"]["name"]: _revision(p) for p in await stateful.pods()}
        assert revisions == {"web-0": first, "web-1": first, "web-2": second}
        # A pod below the partition is recreated at the current revision.
        await stateful.delete(PODS, "web-0")

        async def web_0_back() -> bool:
            pods = {p["metadata"]["name"]: p for p in await stateful.pods()}
            return "web-0" in pods and is_ready(pods["web-0"])

        await eventually(web_0_back)
        assert _revision(await _pod(stateful, "web-0")) == first
        await stateful.patch(
            STS, "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}
        )
        status = await _settled(stateful, 3)
    assert status["currentRevision"] == second
    assert status["currentReplicas"] == 3
    assert all(_revision(p) == second for p in await stateful.pods())
    deleted_for_update = [n for n in recorder.sequence("DELETING") if n != "web-0"]
    assert deleted_for_update == ["web-2", "web-1"]
    _at_most_one_unready(recorder)


async def test_on_delete_updates_only_pods_the_user_deletes(stateful: Harness) -> None:
    await stateful.create(STS, stateful_set("web", 2, updateStrategy={"type": "OnDelete"}))
    first = (await _settled(stateful, 2))["currentRevision"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}}
    await stateful.patch(STS, "web", patch, kind="strategic")

    async def new_revision() -> str | None:
        status = await _status(stateful)
        update = status.get("updateRevision")
        ok = update != first and status.get("observedGeneration") == 2
        return str(update) if ok else None

    second = await eventually(new_revision)
    await asyncio.sleep(0.2)  # an OnDelete set must not replace pods by itself
    assert all(_revision(p) == first for p in await stateful.pods())
    await stateful.delete(PODS, "web-1")

    async def replaced() -> bool:
        pods = {p["metadata"]["name"]: p for p in await stateful.pods()}
        return "web-1" in pods and _revision(pods["web-1"]) == second and is_ready(pods["web-1"])

    await eventually(replaced)
    assert _revision(await _pod(stateful, "web-0")) == first
    status = await _status(stateful)
    assert (status["currentReplicas"], status["updatedReplicas"]) == (1, 1)


async def test_claims_follow_the_retention_policy(stateful: Harness) -> None:
    claim_template = {
        "metadata": {"name": "www", "labels": {"tier": "data"}},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    body = stateful_set(
        "web",
        2,
        volumeClaimTemplates=[claim_template],
        persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete", "whenDeleted": "Retain"},
    )
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    sts = await stateful.create(STS, body)
    await _settled(stateful, 2)
    claims = {c["metadata"]["name"]: c for c in await stateful.items(CLAIMS)}
    assert set(claims) == {"www-web-0", "www-web-1"}
    assert claims["www-web-0"]["metadata"]["labels"] == {"tier": "data", "app": "web"}
    assert not claims["www-web-0"]["metadata"].get("ownerReferences")
    pod = await _pod(stateful, "web-1")
    assert pod["spec"]["volumes"][0] == {
        "name": "www",
        "persistentVolumeClaim": {"claimName": "www-web-1"},
    }
    assert pod["spec"]["volumes"][1]["name"] == "scratch"
    await saw(
        stateful,
        "web",
        (
            "Normal",
            "SuccessfulCreate",
            "create Claim www-web-1 Pod web-1 in StatefulSet web success",
        ),
    )

    await stateful.patch(STS, "web", {"spec": {"replicas": 1}})

    async def scaled_claim_gone() -> bool:
        names = {c["metadata"]["name"] for c in await stateful.items(CLAIMS)}
        return names == {"www-web-0"}

    await eventually(scaled_claim_gone)
    await stateful.patch(
        STS,
        "web",
        {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}},
    )

    async def owned_by_the_set() -> bool:
        claim = await stateful.get(CLAIMS, "www-web-0")
        refs = claim["metadata"].get("ownerReferences") or []
        return [(r["kind"], r["uid"]) for r in refs] == [("StatefulSet", sts.uid)]

    await eventually(owned_by_the_set)
    await stateful.delete(STS, "web")

    async def all_gone() -> bool:
        return not await stateful.items(CLAIMS) and not await stateful.pods()

    await eventually(all_gone)


async def test_a_failed_pod_is_recreated(stateful: Harness) -> None:
    await stateful.create(STS, stateful_set("web", 2))
    await _settled(stateful, 2)
    before = (await _pod(stateful, "web-1"))["metadata"]["uid"]
    await stateful.kubelet.finish("web-1", "Failed")

    async def recreated() -> bool:
        pod = await stateful.maybe(PODS, "web-1")
        return pod is not None and pod["metadata"]["uid"] != before and is_ready(pod)

    await eventually(recreated)
    await saw(
        stateful,
        "web",
        (
            "Warning",
            "RecreatingFailedPod",
            "StatefulSet default/web is recreating failed Pod web-1",
        ),
    )


async def test_orphan_pods_of_the_set_are_adopted(stateful: Harness) -> None:
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "nginx"}]},
    }
    stranger = {**orphan, "metadata": {"name": "other-0", "labels": {"app": "web"}}}
    await stateful.create(PODS, orphan)
    await stateful.create(PODS, stranger)
    sts = await stateful.create(STS, stateful_set("web", 1))
    await _settled(stateful, 1)
    pod = await _pod(stateful, "web-0")
    assert [r["uid"] for r in pod["metadata"]["ownerReferences"]] == [sts.uid]
    assert not (await _pod(stateful, "other-0"))["metadata"].get("ownerReferences")


async def test_rollback_renumbers_the_old_revision_and_history_is_limited(
    stateful: Harness,
) -> None:
    await stateful.create(STS, stateful_set("web", 1, revisionHistoryLimit=1))
    first = (await _settled(stateful, 1))["updateRevision"]
    names = [first]
    for image in ("v2", "v3"):
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}
        await stateful.patch(STS, "web", patch, kind="strategic")
        names.append((await _settled(stateful, 1))["updateRevision"])
    revisions = {r["metadata"]["name"]: r["revision"] for r in await stateful.items(REVISIONS)}
    # v1 was dropped (limit 1 beyond the live one); v2 is history, v3 is live.
    assert revisions == {names[1]: 2, names[2]: 3}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}}
    await stateful.patch(STS, "web", patch, kind="strategic")
    status = await _settled(stateful, 1)
    assert status["updateRevision"] == names[1]
    revisions = {r["metadata"]["name"]: r["revision"] for r in await stateful.items(REVISIONS)}
    assert revisions == {names[1]: 4, names[2]: 3}
