"""The Deployment controller in process, with the ReplicaSet controller, the garbage collector
and a fake kubelet: a new Deployment becomes Available through ``<name>-<hash>``; scaling;
rolling updates watched at every observed state for maxSurge/maxUnavailable; Recreate never
running two templates at once; proportional scaling of a stuck rollout; rollback the way
``kubectl rollout undo`` does it; pause and resume; restart; the progress deadline;
revisionHistoryLimit; adoption of an orphaned ReplicaSet; cascading deletion."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from engenho.reconcilers.revisions import SKIPPED_ANNOTATIONS, template_hash
from engenho.reconcilers.rolling import fenceposts
from engenho.registry import DeleteOptions, WatchQuery

from .conftest import DEPLOYMENTS, PODS, REPLICASETS, Workloads, deployment, eventually

REVISION = "deployment.kubernetes.io/revision"


async def _rolled_out(w: Workloads, name: str, replicas: int) -> dict[str, Any] | None:
    """The Deployment once ``kubectl rollout status`` would call it done."""
    d = await w.get(DEPLOYMENTS, name)
    status = d.get("status") or {}
    done = (
        status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
    )
    return d if done else None


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_]
    return found[0] if found else {}


async def _replica_sets(w: Workloads, app: str = "web") -> dict[str, dict[str, Any]]:
    return {rs["metadata"]["name"]: rs for rs in await w.objects(REPLICASETS, f"app={app}")}


async def _set_image(w: Workloads, image: str, name: str = "web") -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
    await w.patch(DEPLOYMENTS, name, patch, "strategic")


async def test_a_new_deployment_becomes_available(workloads: Workloads) -> None:
    w = workloads
    created = await w.create(DEPLOYMENTS, deployment("web", 3))
    d = await eventually(lambda: _rolled_out(w, "web", 3))
    hash_ = template_hash(created.object["spec"]["template"])
    sets = await _replica_sets(w)
    assert list(sets) == [f"web-{hash_}"]
    rs = sets[f"web-{hash_}"]
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": hash_}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hash_}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == hash_
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created.uid
    assert rs["metadata"]["annotations"] == {
        REVISION: "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    for pod in await w.pods("app=web"):
        assert pod["metadata"]["labels"]["pod-template-hash"] == hash_
    assert d["metadata"]["annotations"][REVISION] == "1"
    assert {k: d["status"].get(k) for k in ("replicas", "readyReplicas", "observedGeneration")} == {
        "replicas": 3,
        "readyReplicas": 3,
        "observedGeneration": 1,
    }
    available, progressing = _condition(d, "Available"), _condition(d, "Progressing")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    assert available["message"] == "Deployment has minimum availability."
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    assert progressing["message"] == f'ReplicaSet "web-{hash_}" has successfully progressed.'

    async def scaled_event() -> list[Any]:
        return [e for e in await w.events("web") if e[1] == "ScalingReplicaSet"]

    assert (await eventually(scaled_event))[0] == (
        "Normal",
        "ScalingReplicaSet",
        f"Scaled up replica set web-{hash_} from 0 to 3",
    )


async def test_scaling(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 3))
    await eventually(lambda: _rolled_out(w, "web", 3))
    await w.registry.scale(
        w.ctx(), DEPLOYMENTS, "default", "web", patch_type="merge", patch={"spec": {"replicas": 5}}
    )
    await eventually(lambda: _rolled_out(w, "web", 5))
    (rs,) = (await _replica_sets(w)).values()
    assert rs["spec"]["replicas"] == 5
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "7"
    await w.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 1}})
    await eventually(lambda: _rolled_out(w, "web", 1))
    name = rs["metadata"]["name"]

    async def scaled_down() -> bool:
        return any(
            m == f"Scaled down replica set {name} to 1 from 5" for _, _, m in await w.events("web")
        )

    await eventually(scaled_down)


class Bounds:
    """Watches pods and ReplicaSets and checks, at every state it observes, that a rollout of
    ``replicas`` never runs more than replicas + maxSurge pods (nor asks for more), and never
    has fewer than replicas - maxUnavailable ready pods."""

    def __init__(self, w: Workloads, replicas: int, surge: int, unavailable: int) -> None:
        self.w = w
        self.most = replicas + surge
        self.least = replicas - unavailable
        self.pods: dict[str, dict[str, Any]] = {}
        self.sets: dict[str, dict[str, Any]] = {}
        self.violations: list[str] = []
        self.states = 0
        self.peak = 0
        self.trough = replicas

    def check(self) -> None:
        self.states += 1
        live = [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")]
        ready = [
            p
            for p in live
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]
        asked = sum(rs["spec"]["replicas"] for rs in self.sets.values())
        self.peak = max(self.peak, len(live))
        self.trough = min(self.trough, len(ready))
        if len(live) > self.most or asked > self.most:
            self.violations.append(f"{len(live)} pods, {asked} asked for, most {self.most}")
        if len(ready) < self.least:
            self.violations.append(f"{len(ready)} ready pods, least {self.least}")

    async def _follow(self, rt: Any, into: dict[str, dict[str, Any]], since: str) -> None:
        query = WatchQuery(resource_version=since, label_selector="app=web")
        async for event in self.w.registry.watch(rt, "default", query):
            if event.object is None:
                continue
            if event.type == "DELETED":
                into.pop(event.object.name, None)
            else:
                into[event.object.name] = event.object.object
            self.check()

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[Bounds]:
        pods = await self.w.registry.list(PODS, "default")
        sets = await self.w.registry.list(REPLICASETS, "default")
        self.pods = {p.name: p.object for p in pods.items}
        self.sets = {s.name: s.object for s in sets.items}
        self.check()
        tasks = [
            asyncio.create_task(self._follow(PODS, self.pods, str(pods.resource_version))),
            asyncio.create_task(self._follow(REPLICASETS, self.sets, str(sets.resource_version))),
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable"),
    [(6, 2, 1), (4, "50%", "25%"), (5, 0, 2), (3, "25%", "25%")],
)
async def test_rolling_update_stays_within_its_bounds(
    workloads: Workloads, replicas: int, surge: int | str, unavailable: int | str
) -> None:
    w = workloads
    update = {"maxSurge": surge, "maxUnavailable": unavailable}
    strategy = {"type": "RollingUpdate", "rollingUpdate": update}
    created = await w.create(DEPLOYMENTS, deployment("web", replicas, strategy=strategy))
    await eventually(lambda: _rolled_out(w, "web", replicas))
    most, least = fenceposts(created.object)
    async with Bounds(w, replicas, most, least).watching() as bounds:
        await _set_image(w, "nginx:2")
        await eventually(lambda: _rolled_out(w, "web", replicas), timeout=20)
        await _set_image(w, "nginx:3")
        await eventually(lambda: _rolled_out(w, "web", replicas), timeout=20)
        await asyncio.sleep(0.2)  # the last pod deletions
    assert bounds.violations == []
    assert bounds.states > 4 * replicas
    # The rollout used the room it had: it surged or dipped as far as it was allowed to.
    assert bounds.peak == replicas + most or bounds.trough == replicas - least
    images = {p["spec"]["containers"][0]["image"] for p in await w.pods("app=web")}
    assert images == {"nginx:3"}
    d = await w.get(DEPLOYMENTS, "web")
    assert d["metadata"]["annotations"][REVISION] == "3"


async def test_recreate_never_runs_two_templates(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 3, strategy={"type": "Recreate"}))
    await eventually(lambda: _rolled_out(w, "web", 3))
    mixed: list[set[str]] = []
    pods: dict[str, dict[str, Any]] = {}

    async def follow(since: str) -> None:
        query = WatchQuery(resource_version=since, label_selector="app=web")
        async for event in w.registry.watch(PODS, "default", query):
            if event.object is None:
                continue
            if event.type == "DELETED":
                pods.pop(event.object.name, None)
            else:
                pods[event.object.name] = event.object.object
            images = {p["spec"]["containers"][0]["image"] for p in pods.values()}
            if len(images) > 1:
                mixed.append(images)

    listed = await w.registry.list(PODS, "default")
    pods.update({p.name: p.object for p in listed.items})
    task = asyncio.create_task(follow(str(listed.resource_version)))
    try:
        await _set_image(w, "nginx:2")
        await eventually(lambda: _rolled_out(w, "web", 3))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert mixed == []
    assert {p["spec"]["containers"][0]["image"] for p in await w.pods("app=web")} == {"nginx:2"}


async def test_scaling_a_stuck_rollout_is_proportional(workloads: Workloads) -> None:
    w = workloads
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    await w.create(DEPLOYMENTS, deployment("web", 10, strategy=strategy))
    await eventually(lambda: _rolled_out(w, "web", 10), timeout=20)
    old_name = next(iter(await _replica_sets(w)))
    await w.kubelet.set(bind=False)  # the new pods never start: the rollout sticks
    await _set_image(w, "nginx:2")

    async def stuck() -> dict[str, int] | None:
        sizes = {n: rs["spec"]["replicas"] for n, rs in (await _replica_sets(w)).items()}
        return sizes if len(sizes) == 2 and sum(sizes.values()) == 13 else None

    sizes = await eventually(stuck)
    assert sizes[old_name] == 8  # maxUnavailable 2 of 10; the new one surged by 3
    await asyncio.sleep(0.2)
    assert sizes == {n: rs["spec"]["replicas"] for n, rs in (await _replica_sets(w)).items()}
    await w.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 20}})

    async def rescaled() -> dict[str, int] | None:
        sets = await _replica_sets(w)
        sizes = {n: rs["spec"]["replicas"] for n, rs in sets.items()}
        return sizes if sum(sizes.values()) == 23 else None

    sizes = await eventually(rescaled)
    # Upstream's proportions: 8 * 23/13 = 14.2 -> 14, and the new one takes the other 9.
    assert sizes[old_name] == 14
    assert sorted(sizes.values()) == [9, 14]


def _undo_patch(d: dict[str, Any], rs: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``kubectl rollout undo`` sends: the ReplicaSet's template without its hash label,
    and the Deployment's own annotations merged with the ReplicaSet's."""
    template = copy.deepcopy(rs["spec"]["template"])
    template["metadata"]["labels"].pop("pod-template-hash")
    annotations = {
        k: v
        for k, v in (d["metadata"].get("annotations") or {}).items()
        if k in SKIPPED_ANNOTATIONS
    }
    annotations.update(
        {
            k: v
            for k, v in (rs["metadata"].get("annotations") or {}).items()
            if k not in SKIPPED_ANNOTATIONS
        }
    )
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


async def test_rollback_to_a_previous_revision(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 2))
    await eventually(lambda: _rolled_out(w, "web", 2))
    await _set_image(w, "nginx:2")
    await eventually(lambda: _rolled_out(w, "web", 2))
    sets = await _replica_sets(w)
    first = next(rs for rs in sets.values() if rs["metadata"]["annotations"][REVISION] == "1")
    d = await w.get(DEPLOYMENTS, "web")
    await w.patch(DEPLOYMENTS, "web", _undo_patch(d, first), "json")
    await eventually(lambda: _rolled_out(w, "web", 2))

    async def revision_three() -> dict[str, Any] | None:
        d = await w.get(DEPLOYMENTS, "web")
        return d if d["metadata"]["annotations"].get(REVISION) == "3" else None

    await eventually(revision_three)
    sets = await _replica_sets(w)
    assert len(sets) == 2  # the old ReplicaSet came back; none was created
    back = sets[first["metadata"]["name"]]
    assert back["metadata"]["annotations"][REVISION] == "3"
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert back["spec"]["replicas"] == 2
    assert {p["spec"]["containers"][0]["image"] for p in await w.pods("app=web")} == {"nginx"}


async def test_pause_and_resume(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 2))
    await eventually(lambda: _rolled_out(w, "web", 2))
    await w.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}})

    async def paused() -> dict[str, Any] | None:
        d = await w.get(DEPLOYMENTS, "web")
        return d if _condition(d, "Progressing").get("reason") == "DeploymentPaused" else None

    d = await eventually(paused)
    assert _condition(d, "Progressing")["status"] == "Unknown"
    await _set_image(w, "nginx:2")
    await w.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}})

    async def observed() -> dict[str, Any] | None:
        d = await w.get(DEPLOYMENTS, "web")
        status = d.get("status") or {}
        done = status.get("observedGeneration") == d["metadata"]["generation"]
        return d if done and status.get("availableReplicas") == 3 else None

    await eventually(observed)
    assert len(await _replica_sets(w)) == 1  # scaled while paused, but no new revision
    await w.patch(DEPLOYMENTS, "web", {"spec": {"paused": None}})
    d = await eventually(lambda: _rolled_out(w, "web", 3))
    assert len(await _replica_sets(w)) == 2
    assert _condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"][REVISION] == "2"


async def test_restart_rolls_out_a_new_revision(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 2))
    await eventually(lambda: _rolled_out(w, "web", 2))
    before = {p["metadata"]["name"] for p in await w.pods("app=web")}
    stamp = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
    await w.patch(
        DEPLOYMENTS,
        "web",
        {"spec": {"template": {"metadata": {"annotations": stamp}}}},
        "strategic",
    )
    await eventually(lambda: _rolled_out(w, "web", 2))

    async def replaced() -> bool:
        pods = await w.pods("app=web")
        return len(pods) == 2 and not before & {p["metadata"]["name"] for p in pods}

    await eventually(replaced)
    assert len(await _replica_sets(w)) == 2


async def test_progress_deadline_exceeded(workloads: Workloads) -> None:
    w = workloads
    await w.kubelet.set(ready=False)
    await w.create(DEPLOYMENTS, deployment("web", 2, progressDeadlineSeconds=1))

    async def timed_out() -> dict[str, Any] | None:
        d = await w.get(DEPLOYMENTS, "web")
        return d if _condition(d, "Progressing").get("status") == "False" else None

    d = await eventually(timed_out, timeout=10)
    progressing = _condition(d, "Progressing")
    (name,) = await _replica_sets(w)
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    assert progressing["message"] == f'ReplicaSet "{name}" has timed out progressing.'
    available = _condition(d, "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    await w.kubelet.set(ready=True)
    d = await eventually(lambda: _rolled_out(w, "web", 2))

    async def complete() -> bool:
        d = await w.get(DEPLOYMENTS, "web")
        return _condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"

    await eventually(complete)


async def test_revision_history_limit(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 1, revisionHistoryLimit=1))
    await eventually(lambda: _rolled_out(w, "web", 1))
    for image in ("nginx:2", "nginx:3", "nginx:4"):
        await _set_image(w, image)
        await eventually(lambda: _rolled_out(w, "web", 1))

    async def trimmed() -> dict[str, dict[str, Any]] | None:
        sets = await _replica_sets(w)
        return sets if len(sets) == 2 else None

    sets = await eventually(trimmed)
    revisions = sorted(rs["metadata"]["annotations"][REVISION] for rs in sets.values())
    assert revisions == ["3", "4"]


async def test_adopts_an_orphaned_replica_set(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 2))
    await eventually(lambda: _rolled_out(w, "web", 2))
    (name,) = await _replica_sets(w)
    await w.registry.delete(
        w.ctx(), DEPLOYMENTS, "default", "web", DeleteOptions(propagation_policy="Orphan")
    )

    async def orphaned() -> bool:
        rs = await w.maybe(REPLICASETS, name)
        kept = rs is not None and not rs["metadata"].get("ownerReferences")
        return kept and await w.maybe(DEPLOYMENTS, "web") is None

    await eventually(orphaned)
    again = await w.create(DEPLOYMENTS, deployment("web", 2))

    async def adopted() -> bool:
        rs = await w.get(REPLICASETS, name)
        refs = rs["metadata"].get("ownerReferences") or []
        return [r["uid"] for r in refs] == [again.uid]

    await eventually(adopted)
    await eventually(lambda: _rolled_out(w, "web", 2))
    assert list(await _replica_sets(w)) == [name]


async def test_a_hash_collision_moves_to_another_name(workloads: Workloads) -> None:
    w = workloads
    body = deployment("web", 1)
    # What the controller would make its ReplicaSet (the template as stored, defaults
    # included), found already taken by someone else's ReplicaSet.
    probe = await w.create(DEPLOYMENTS, deployment("probe", 1))
    probe_template = copy.deepcopy(probe.object["spec"]["template"])
    probe_template["metadata"]["labels"] = {"app": "web"}
    taken = f"web-{template_hash(probe_template)}"
    squatter = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": taken, "labels": {"app": "other"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "other"}},
            "template": {
                "metadata": {"labels": {"app": "other"}},
                "spec": {"containers": [{"name": "other", "image": "busybox"}]},
            },
        },
    }
    await w.create(REPLICASETS, squatter)
    await w.create(DEPLOYMENTS, body)
    d = await eventually(lambda: _rolled_out(w, "web", 1))
    assert d["status"]["collisionCount"] == 1
    (name,) = await _replica_sets(w)
    assert name != taken and name.startswith("web-")
    assert (await w.get(REPLICASETS, taken))["spec"]["template"]["spec"]["containers"][0][
        "name"
    ] == "other"


async def test_deleting_a_deployment_deletes_everything_it_made(workloads: Workloads) -> None:
    w = workloads
    await w.create(DEPLOYMENTS, deployment("web", 2))
    await eventually(lambda: _rolled_out(w, "web", 2))
    await w.registry.delete(w.ctx(), DEPLOYMENTS, "default", "web")

    async def gone() -> bool:
        return not await _replica_sets(w) and not await w.pods("app=web")

    await eventually(gone)
