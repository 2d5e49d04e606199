"""Jobs and CronJobs.

Job Status is the first of Complete, Failed (from True conditions), Terminating (deletion
timestamp), Suspended, FailureTarget, else Running. Completions is ``succeeded/completions``;
without ``spec.completions`` it is ``succeeded/1``, or ``succeeded/1 of P`` for parallelism
P > 1. Duration runs from ``status.startTime`` to ``completionTime`` (or to now) and is empty
before the job starts.

CronJob Suspend is declared ``boolean`` upstream but sent as the strings ``True``, ``False`` or
``<unset>``; it is reproduced as sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import age, human_duration, parse_time
from engenho.api.printing.columns import AGE, CONTAINERS, IMAGES, NAME, column, wide
from engenho.api.printing.fields import dig, integer, mapping, sequence, string
from engenho.api.printing.formatting import bool_pointer, containers_and_images
from engenho.api.printing.labels import NONE, format_label_selector
from engenho.api.printing.printer import Printer, Row

__all__ = [
    "CRON_JOB",
    "JOB",
    "cron_job_row",
    "job_row",
]

_JOB_SELECTOR_DOC = (
    "A label query over pods that should match the pod count. Normally, the system sets this "
    "field for you. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
)


def job_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    spec, status = mapping(obj.get("spec")), mapping(obj.get("status"))
    succeeded = integer(status.get("succeeded"))
    completions = spec.get("completions")
    parallelism = integer(spec.get("parallelism"))
    if isinstance(completions, int) and not isinstance(completions, bool):
        progress = f"{succeeded}/{completions}"
    elif parallelism > 1:
        progress = f"{succeeded}/1 of {parallelism}"
    else:
        progress = f"{succeeded}/1"
    return Row(
        cells=(
            string(metadata.get("name")),
            _job_status(metadata, status),
            progress,
            _duration(status, now),
            age(metadata.get("creationTimestamp"), now),
            *containers_and_images(dig(spec, "template", "spec")),
            format_label_selector(spec.get("selector")),
        )
    )


def _job_status(metadata: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    conditions = [mapping(c) for c in sequence(status.get("conditions"))]

    def holds(kind: str) -> bool:
        # Upstream reads the first condition of the type only.
        found = next((c for c in conditions if c.get("type") == kind), None)
        return found is not None and found.get("status") == "True"

    if holds("Complete"):
        return "Complete"
    if holds("Failed"):
        return "Failed"
    if metadata.get("deletionTimestamp") is not None:
        return "Terminating"
    if holds("Suspended"):
        return "Suspended"
    if holds("FailureTarget"):
        return "FailureTarget"
    return "Running"


def _duration(status: Mapping[str, Any], now: datetime) -> str:
    started = parse_time(status.get("startTime"))
    if started is None:
        return ""
    completed = parse_time(status.get("completionTime"))
    return human_duration((completed or now) - started)


def cron_job_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    spec, status = mapping(obj.get("spec")), mapping(obj.get("status"))
    last = status.get("lastScheduleTime")
    job_spec = mapping(dig(spec, "jobTemplate", "spec"))
    time_zone = spec.get("timeZone")
    return Row(
        cells=(
            string(metadata.get("name")),
            string(spec.get("schedule")),
            time_zone if isinstance(time_zone, str) else NONE,
            bool_pointer(spec.get("suspend")),
            len(sequence(status.get("active"))),
            NONE if last is None else age(last, now),
            age(metadata.get("creationTimestamp"), now),
            *containers_and_images(dig(job_spec, "template", "spec")),
            format_label_selector(job_spec.get("selector")),
        )
    )


JOB = Printer(
    kind="Job",
    version="v1",
    columns=(
        NAME,
        column("Status", "Status of the job."),
        column(
            "Completions",
            "The number of pods which reached phase Succeeded. The value increases "
            "monotonically for a given spec. However, it may decrease in reaction to scale down "
            "of elastic indexed jobs.",
        ),
        column("Duration", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", _JOB_SELECTOR_DOC),
    ),
    row=job_row,
)

CRON_JOB = Printer(
    kind="CronJob",
    version="v1",
    columns=(
        NAME,
        column("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        column(
            "Timezone",
            "The time zone name for the given schedule, see "
            "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, "
            "this will default to the time zone of the kube-controller-manager process. The set "
            "of valid time zone names and the time zone offset is loaded from the system-wide "
            "time zone database by the API server during CronJob validation and the controller "
            "manager during execution. If no system-wide time zone database can be found a "
            "bundled version of the database is used instead. If the time zone name becomes "
            "invalid during the lifetime of a CronJob or due to a change in host configuration, "
            "the controller will stop creating new new Jobs and will create a system event with "
            "the reason UnknownTimeZone. More information can be found in "
            "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
        ),
        column(
            "Suspend",
            "This flag tells the controller to suspend subsequent executions, it does not apply "
            "to already started executions.  Defaults to false.",
            "boolean",
        ),
        column("Active", "A list of pointers to currently running jobs.", "integer"),
        column(
            "Last Schedule",
            "Information when was the last time the job was successfully scheduled.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", _JOB_SELECTOR_DOC),
    ),
    row=cron_job_row,
)
