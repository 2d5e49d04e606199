"""The Job controller in process, with the scheduler and a stand-in kubelet that runs, succeeds
or fails pods: selector and labels generated at create, completions and parallelism (checked at
every step a pod watcher saw), the back-off limit, Indexed Jobs, the active deadline, suspend
and resume, Jobs without completions, the pod failure policy, the tracking finalizer, and the
TTL-after-finished controller."""

from __future__ import annotations

from typing import Any

from engenho.reconcilers.jobs import JobController
from engenho.schema import CATALOGUE

from ..sets.harness import PODS, Harness, Recorder, eventually, saw, saw_count
from .conftest import Clock

JOBS = CATALOGUE.get("batch", "v1", "jobs")
FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX = "batch.kubernetes.io/job-completion-index"


def job(name: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "main", "image": "busybox"}],
                    "restartPolicy": restart,
                }
            },
            **spec,
        },
    }


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition["type"] == type_:
            return dict(condition)
    return None


async def _finished(harness: Harness, name: str, type_: str = "Complete") -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await harness.get(JOBS, name)
        condition = _condition(obj, type_)
        return obj if condition is not None and condition["status"] == "True" else None

    result: dict[str, Any] = await eventually(check, message=f"{name} never became {type_}")
    return result


async def _pods(harness: Harness, name: str) -> list[dict[str, Any]]:
    return await harness.pods(f"batch.kubernetes.io/job-name={name}")


def _active(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _controller(harness: Harness) -> JobController:
    controller = harness.controllers["job"]
    assert isinstance(controller, JobController)
    return controller


async def test_selector_and_pod_labels_are_generated(batch: Harness) -> None:
    created = await batch.create(JOBS, job("gen"))
    spec = created.object["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": created.uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": created.uid,
        "batch.kubernetes.io/job-name": "gen",
        "controller-uid": created.uid,
        "job-name": "gen",
    }
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)


async def test_completions_with_parallelism(batch: Harness) -> None:
    await batch.kubelet.again(lambda _pod: "Succeeded")
    async with Recorder(batch.registry, "batch.kubernetes.io/job-name=work") as recorder:
        await batch.create(JOBS, job("work", completions=5, parallelism=2))
        obj = await _finished(batch, "work")
    status = obj["status"]
    assert status["succeeded"] == 5
    assert "failed" not in status and "active" not in status
    assert status["uncountedTerminatedPods"] == {}
    assert (status["ready"], status["terminating"]) == (0, 0)
    assert status["startTime"] <= status["completionTime"]
    for state in recorder.states():
        running = [n for n, p in state.items() if _active(p)]
        assert len(running) <= 2, f"more pods active than the parallelism: {running}"
    pods = await _pods(batch, "work")
    assert len(pods) == 5
    assert not any(FINALIZER in (p["metadata"].get("finalizers") or []) for p in pods)
    assert all(p["metadata"]["generateName"] == "work-" for p in pods)
    await saw(batch, "work", ("Normal", "Completed", "Job completed"))
    await saw_count(batch, "work", "SuccessfulCreate", 5)


async def test_pods_carry_the_tracking_finalizer_while_they_run(batch: Harness) -> None:
    await batch.create(JOBS, job("run"))

    async def running() -> dict[str, Any] | None:
        pods = await _pods(batch, "run")
        obj = await batch.get(JOBS, "run")
        ok = pods and obj.get("status", {}).get("ready") == 1
        return pods[0] if ok else None

    pod = await eventually(running)
    assert pod["metadata"]["finalizers"] == [FINALIZER]
    assert (await batch.get(JOBS, "run"))["status"]["active"] == 1
    await batch.kubelet.finish(pod["metadata"]["name"], "Succeeded")
    await _finished(batch, "run")
    [pod] = await _pods(batch, "run")
    assert not pod["metadata"].get("finalizers")


async def test_back_off_limit(batch: Harness) -> None:
    await batch.kubelet.again(lambda _pod: "Failed")
    await batch.create(JOBS, job("flaky", backoffLimit=2))
    obj = await _finished(batch, "flaky", "Failed")
    condition = _condition(obj, "Failed")
    assert condition is not None
    assert (condition["reason"], condition["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert obj["status"]["failed"] == 3
    assert "completionTime" not in obj["status"]
    assert len(await _pods(batch, "flaky")) == 3
    message = "Job has reached the specified backoff limit"
    await saw(batch, "flaky", ("Warning", "BackoffLimitExceeded", message))


async def test_indexed_job(batch: Harness) -> None:
    failed_once: set[str] = set()

    def verdict(pod: dict[str, Any]) -> str:
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        if index == "1" and not failed_once:
            failed_once.add(pod["metadata"]["name"])
            return "Failed"
        return "Succeeded"

    await batch.kubelet.again(verdict)
    await batch.create(
        JOBS, job("idx", completions=3, parallelism=3, completionMode="Indexed", backoffLimit=3)
    )
    obj = await _finished(batch, "idx")
    assert obj["status"]["completedIndexes"] == "0-2"
    assert (obj["status"]["succeeded"], obj["status"]["failed"]) == (3, 1)
    pods = await _pods(batch, "idx")
    assert len(pods) == 4
    for pod in pods:
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert pod["metadata"]["generateName"] == f"idx-{index}-"
        assert pod["spec"]["hostname"] == f"idx-{index}"
        env = pod["spec"]["containers"][0]["env"]
        assert env == [
            {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {
                    "fieldRef": {
                        "apiVersion": "v1",
                        "fieldPath": f"metadata.annotations['{INDEX}']",
                    }
                },
            }
        ]
    indexes = sorted(p["metadata"]["annotations"][INDEX] for p in pods)
    assert indexes == ["0", "1", "1", "2"]


async def test_active_deadline(batch: Harness, clock: Clock) -> None:
    await batch.create(JOBS, job("slow", parallelism=2, completions=2, activeDeadlineSeconds=30))

    async def two_running() -> bool:
        obj = await batch.get(JOBS, "slow")
        return (obj.get("status") or {}).get("ready") == 2

    await eventually(two_running)
    clock.advance(31)
    _controller(batch).queue.add("default/slow")
    obj = await _finished(batch, "slow", "Failed")
    condition = _condition(obj, "Failed")
    assert condition is not None
    assert (condition["reason"], condition["message"]) == (
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    )
    assert obj["status"]["failed"] == 2
    assert "active" not in obj["status"]

    async def pods_gone() -> bool:
        return not await _pods(batch, "slow")

    await eventually(pods_gone)


async def test_suspend_and_resume(batch: Harness) -> None:
    await batch.create(JOBS, job("later", suspend=True, completions=2, parallelism=2))

    async def suspended() -> dict[str, Any] | None:
        obj = await batch.get(JOBS, "later")
        condition = _condition(obj, "Suspended")
        return obj if condition and condition["status"] == "True" else None

    obj = await eventually(suspended)
    assert "startTime" not in obj["status"]
    assert not await _pods(batch, "later")
    await batch.patch(JOBS, "later", {"spec": {"suspend": False}})

    async def resumed() -> dict[str, Any] | None:
        obj = await batch.get(JOBS, "later")
        condition = _condition(obj, "Suspended")
        ok = condition and condition["status"] == "False" and obj["status"].get("ready") == 2
        return obj if ok else None

    obj = await eventually(resumed)
    condition = _condition(obj, "Suspended")
    assert condition is not None
    assert (condition["reason"], condition["message"]) == ("JobResumed", "Job resumed")
    assert obj["status"]["startTime"]
    await batch.patch(JOBS, "later", {"spec": {"suspend": True}})

    async def emptied() -> bool:
        obj = await batch.get(JOBS, "later")
        return (
            not any(_active(p) for p in await _pods(batch, "later"))
            and "active" not in obj["status"]
            and (_condition(obj, "Suspended") or {}).get("status") == "True"
        )

    await eventually(emptied)
    await saw(
        batch,
        "later",
        ("Normal", "Suspended", "Job suspended"),
        ("Normal", "Resumed", "Job resumed"),
    )


async def test_a_job_without_completions_ends_with_its_first_success(batch: Harness) -> None:
    await batch.create(JOBS, job("queue", completions=None, parallelism=2))

    async def two_ready() -> list[dict[str, Any]] | None:
        pods = await _pods(batch, "queue")
        obj = await batch.get(JOBS, "queue")
        return pods if (obj.get("status") or {}).get("ready") == 2 else None

    pods = await eventually(two_ready)
    await batch.kubelet.finish(pods[0]["metadata"]["name"], "Succeeded")

    async def one_left() -> bool:
        status = (await batch.get(JOBS, "queue"))["status"]
        return bool(status.get("succeeded") == 1 and status.get("active") == 1)

    await eventually(one_left)
    assert len(await _pods(batch, "queue")) == 2  # no pod replaces the one that succeeded
    await batch.kubelet.finish(pods[1]["metadata"]["name"], "Failed")
    obj = await _finished(batch, "queue")
    assert (obj["status"]["succeeded"], obj["status"]["failed"]) == (1, 1)


async def test_pod_failure_policy(batch: Harness) -> None:
    policy = {
        "rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        ]
    }
    await batch.create(JOBS, job("picky", backoffLimit=0, podFailurePolicy=policy))

    async def first_pod() -> str | None:
        pods = [p for p in await _pods(batch, "picky") if _active(p)]
        ready = (await batch.get(JOBS, "picky")).get("status", {}).get("ready") == 1
        return pods[0]["metadata"]["name"] if pods and ready else None

    ignored = await eventually(first_pod)
    await batch.kubelet.finish(ignored, "Failed", code=3)

    async def replaced() -> str | None:
        name = await first_pod()
        return name if name != ignored else None

    fatal = await eventually(replaced)
    obj = await batch.get(JOBS, "picky")
    assert "failed" not in obj["status"], "an ignored failure does not count"
    await batch.kubelet.finish(fatal, "Failed", code=42)
    obj = await _finished(batch, "picky", "Failed")
    message = (
        f"Container main for pod default/{fatal} failed with exit code 42 matching FailJob "
        "rule at index 1"
    )
    for type_ in ("FailureTarget", "Failed"):
        condition = _condition(obj, type_)
        assert condition is not None
        assert (condition["status"], condition["reason"], condition["message"]) == (
            "True",
            "PodFailurePolicy",
            message,
        )
    assert obj["status"]["failed"] == 1


async def test_restarts_under_on_failure_count_against_the_limit(batch: Harness) -> None:
    await batch.create(JOBS, job("restarts", restart="OnFailure", backoffLimit=2))

    async def ready_pod() -> dict[str, Any] | None:
        obj = await batch.get(JOBS, "restarts")
        pods = await _pods(batch, "restarts")
        return pods[0] if pods and (obj.get("status") or {}).get("ready") == 1 else None

    pod = await eventually(ready_pod)
    body = dict(pod)
    body["status"] = {**pod["status"]}
    body["status"]["containerStatuses"] = [
        {**c, "restartCount": 2} for c in pod["status"]["containerStatuses"]
    ]
    await batch.registry.update(
        batch.ctx(), PODS, "default", pod["metadata"]["name"], body, subresource="status"
    )
    obj = await _finished(batch, "restarts", "Failed")
    assert (_condition(obj, "Failed") or {}).get("reason") == "BackoffLimitExceeded"


async def test_deleting_a_job_releases_its_pods(batch: Harness) -> None:
    await batch.create(JOBS, job("gone", parallelism=2, completions=2))

    async def two_ready() -> bool:
        obj = await batch.get(JOBS, "gone")
        return (obj.get("status") or {}).get("ready") == 2

    await eventually(two_ready)
    await batch.delete(JOBS, "gone", propagation_policy="Background")

    async def pods_gone() -> bool:
        return not await _pods(batch, "gone")

    await eventually(pods_gone)


async def test_ttl_after_finished(batch: Harness, clock: Clock) -> None:
    await batch.kubelet.again(lambda _pod: "Succeeded")
    await batch.create(JOBS, job("short", ttlSecondsAfterFinished=0))
    await batch.create(JOBS, job("kept", ttlSecondsAfterFinished=600))

    async def short_gone() -> bool:
        return await batch.maybe(JOBS, "short") is None and not await _pods(batch, "short")

    await eventually(short_gone)
    await _finished(batch, "kept")
    clock.advance(601)
    batch.controllers["ttl-after-finished"].queue.add("default/kept")

    async def kept_gone() -> bool:
        return await batch.maybe(JOBS, "kept") is None

    await eventually(kept_gone)
