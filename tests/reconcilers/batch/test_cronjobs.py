"""The CronJob controller in process, on a clock the test moves from one firing to the next:
Job names and the scheduled-timestamp annotation, each concurrency policy, suspend,
startingDeadlineSeconds, time zones, history limits, and Jobs that go missing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engenho.reconcilers.machines.pods import parse_time
from engenho.schema import CATALOGUE

from ..sets.harness import Harness, eventually, saw
from .conftest import Clock

CRONJOBS = CATALOGUE.get("batch", "v1", "cronjobs")
JOBS = CATALOGUE.get("batch", "v1", "jobs")


def cronjob(name: str, schedule: str = "* * * * *", **spec: Any) -> dict[str, Any]:
    template = {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "containers": [{"name": "main", "image": "busybox"}],
                    "restartPolicy": "Never",
                }
            },
        }
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "jobTemplate": template, **spec},
    }


class Firings:
    """Moves the clock to a CronJob's firings and wakes the controller."""

    def __init__(self, harness: Harness, clock: Clock, name: str, created: datetime) -> None:
        self.harness = harness
        self.clock = clock
        self.name = name
        self.minute = created.replace(second=0, microsecond=0)

    def go_to(self, moment: datetime) -> None:
        ahead = (moment - self.clock()).total_seconds()
        if ahead > 0:
            self.clock.advance(ahead)
        self.harness.controllers["cronjob"].queue.add(f"default/{self.name}")

    def next_minute(self, seconds: int = 1) -> datetime:
        """Go ``seconds`` past the next minute boundary; returns the boundary."""
        self.minute += timedelta(minutes=1)
        self.go_to(self.minute + timedelta(seconds=seconds))
        return self.minute


async def _start(harness: Harness, clock: Clock, body: dict[str, Any]) -> Firings:
    stored = await harness.create(CRONJOBS, body)
    created = parse_time(stored.object["metadata"]["creationTimestamp"])
    assert created is not None
    return Firings(harness, clock, stored.name, created)


def _job_name(cronjob_name: str, moment: datetime) -> str:
    return f"{cronjob_name}-{int(moment.timestamp()) // 60}"


async def _jobs(harness: Harness) -> list[str]:
    return sorted(j["metadata"]["name"] for j in await harness.items(JOBS))


async def _has_jobs(harness: Harness, *names: str) -> None:
    async def check() -> bool:
        return await _jobs(harness) == sorted(names)

    await eventually(check, message=f"expected jobs {sorted(names)}")


async def _status(harness: Harness, name: str) -> dict[str, Any]:
    return (await harness.get(CRONJOBS, name)).get("status") or {}


async def _active(harness: Harness, name: str) -> list[str]:
    return sorted(a["name"] for a in (await _status(harness, name)).get("active") or [])


async def _finish_job(harness: Harness, job: str, phase: str = "Succeeded") -> None:
    """Let the kubelet finish the Job's pod, and wait for the Job to finish."""

    async def pod() -> str | None:
        pods = await harness.pods(f"batch.kubernetes.io/job-name={job}")
        return pods[0]["metadata"]["name"] if pods else None

    await harness.kubelet.finish(await eventually(pod), phase)
    wanted = "Complete" if phase == "Succeeded" else "Failed"

    async def finished() -> bool:
        conditions = (await harness.get(JOBS, job)).get("status", {}).get("conditions") or []
        return any(c["type"] == wanted and c["status"] == "True" for c in conditions)

    await eventually(finished)


async def test_allow_runs_jobs_side_by_side(batch: Harness, clock: Clock) -> None:
    firings = await _start(batch, clock, cronjob("tick"))
    first = firings.next_minute()
    await _has_jobs(batch, _job_name("tick", first))
    job = await batch.get(JOBS, _job_name("tick", first))
    annotations = job["metadata"]["annotations"]
    assert annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] == first.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    second = firings.next_minute()
    await _has_jobs(batch, _job_name("tick", first), _job_name("tick", second))

    async def both_active() -> bool:
        return await _active(batch, "tick") == sorted(
            [_job_name("tick", first), _job_name("tick", second)]
        )

    await eventually(both_active)
    status = await _status(batch, "tick")
    assert status["lastScheduleTime"] == second.strftime("%Y-%m-%dT%H:%M:%SZ")
    ref = status["active"][0]
    assert {ref["apiVersion"], ref["kind"], ref["namespace"]} == {"batch/v1", "Job", "default"}
    await saw(
        batch, "tick", ("Normal", "SuccessfulCreate", f"Created job {_job_name('tick', first)}")
    )


async def test_forbid_waits_for_the_running_job(batch: Harness, clock: Clock) -> None:
    firings = await _start(batch, clock, cronjob("solo", concurrencyPolicy="Forbid"))
    first = firings.next_minute()
    await _has_jobs(batch, _job_name("solo", first))
    second = firings.next_minute()

    async def refused() -> bool:
        return any(e[1] == "JobAlreadyActive" for e in await batch.events("solo"))

    await eventually(refused)
    assert await _jobs(batch) == [_job_name("solo", first)]
    # Once the running Job is done, the firing that had to wait starts (no deadline).
    await _finish_job(batch, _job_name("solo", first))
    await _has_jobs(batch, _job_name("solo", first), _job_name("solo", second))

    async def accounted() -> dict[str, Any] | None:
        status = await _status(batch, "solo")
        ok = status.get("lastSuccessfulTime") and await _active(batch, "solo") == [
            _job_name("solo", second)
        ]
        return status if ok else None

    status = await eventually(accounted)
    completed = (await batch.get(JOBS, _job_name("solo", first)))["status"]["completionTime"]
    assert status["lastSuccessfulTime"] == completed
    message = f"Saw completed job: {_job_name('solo', first)}, status: Complete"
    await saw(batch, "solo", ("Normal", "SawCompletedJob", message))


async def test_replace_deletes_the_running_job(batch: Harness, clock: Clock) -> None:
    firings = await _start(batch, clock, cronjob("fresh", concurrencyPolicy="Replace"))
    first = firings.next_minute()
    await _has_jobs(batch, _job_name("fresh", first))
    second = firings.next_minute()
    await _has_jobs(batch, _job_name("fresh", second))

    async def only_second() -> bool:
        return await _active(batch, "fresh") == [_job_name("fresh", second)]

    await eventually(only_second)
    message = f"Deleted job {_job_name('fresh', first)}"
    await saw(batch, "fresh", ("Normal", "SuccessfulDelete", message))


async def test_history_limits(batch: Harness, clock: Clock) -> None:
    body = cronjob("hist", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1)
    firings = await _start(batch, clock, body)
    names = []
    for phase in ("Succeeded", "Succeeded", "Failed", "Failed"):
        moment = firings.next_minute()
        name = _job_name("hist", moment)
        names.append(name)

        async def created(name: str = name) -> bool:
            return name in await _jobs(batch)

        await eventually(created)
        await _finish_job(batch, name, phase)
    # The newest succeeded and the newest failed Job stay.
    await _has_jobs(batch, names[1], names[3])


async def test_suspend_and_resume(batch: Harness, clock: Clock) -> None:
    firings = await _start(batch, clock, cronjob("nap", suspend=True))
    first = firings.next_minute()
    await asyncio.sleep(0.2)  # a suspended CronJob must not start the Job
    assert await _jobs(batch) == []
    await batch.patch(CRONJOBS, "nap", {"spec": {"suspend": False}})
    await _has_jobs(batch, _job_name("nap", first))


async def test_starting_deadline(batch: Harness, clock: Clock) -> None:
    firings = await _start(batch, clock, cronjob("late", startingDeadlineSeconds=10))
    firings.next_minute(seconds=30)  # 30 s late for a 10 s deadline
    await asyncio.sleep(0.2)
    assert await _jobs(batch) == []
    second = firings.next_minute(seconds=5)
    await _has_jobs(batch, _job_name("late", second))


async def test_time_zone(batch: Harness, clock: Clock) -> None:
    zone = ZoneInfo("Asia/Kolkata")  # UTC+05:30: its whole hours are half past in UTC
    firings = await _start(batch, clock, cronjob("ist", "0 * * * *", timeZone="Asia/Kolkata"))
    local = clock().astimezone(zone)
    due = (local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).astimezone(UTC)
    firings.go_to(due + timedelta(seconds=1))
    await _has_jobs(batch, _job_name("ist", due))
    job = await batch.get(JOBS, _job_name("ist", due))
    stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert stamp == due.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S+05:30")
    assert stamp.endswith(":00:00+05:30")


async def test_a_deleted_active_job_goes_missing(batch: Harness, clock: Clock) -> None:
    firings = await _start(batch, clock, cronjob("lost"))
    first = firings.next_minute()
    name = _job_name("lost", first)
    await _has_jobs(batch, name)

    async def listed() -> bool:
        return await _active(batch, "lost") == [name]

    await eventually(listed)
    await batch.delete(JOBS, name, propagation_policy="Background")

    async def forgotten() -> bool:
        return not await _active(batch, "lost")

    await eventually(forgotten)
