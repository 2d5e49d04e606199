"""batch/v1 Job and CronJob rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.pods import validate_pod_template
from engenho.schema.rules.selectors import go_string_map, selector_matches, validate_label_selector
from engenho.schema.rules.workloads import check_non_negative

__all__ = ["cron_schedule_errors", "validate_cron_job", "validate_job", "validate_job_spec"]

_JOB_RESTART = ("OnFailure", "Never")
_COMPLETION_MODES = ("NonIndexed", "Indexed")
_CONCURRENCY = ("Allow", "Forbid", "Replace")
_CRON_JOB_NAME_LIMIT = 52
_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (low, high, names) for minute, hour, day of month, month, day of week
_CRON_FIELDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)
_EVERY = re.compile(r"@every (\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.upper() in names:
        return names.index(text.upper()) + (low if names is _MONTHS else 0)
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def cron_schedule_errors(schedule: str) -> list[str]:
    """Messages for a schedule the standard five-field cron parser would reject."""
    if schedule.startswith(("TZ=", "CRON_TZ=")):
        return ["cannot use TZ or CRON_TZ in schedule, use timeZone field instead"]
    if schedule in _DESCRIPTORS or _EVERY.fullmatch(schedule):
        return []
    fields = schedule.split()
    if len(fields) != 5:
        return [f"expected exactly 5 fields, found {len(fields)}: {schedule}"]
    for text, (low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            span, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return [f"bad step in {part!r}"]
            if span in ("*", "?"):
                continue
            start, _, end = span.partition("-")
            first = _cron_value(start, low, high, names)
            last = _cron_value(end, low, high, names) if end else first
            if first is None or last is None or first > last:
                return [f"failed to parse {part!r}: value out of range [{low}, {high}]"]
    return []


def validate_job_spec(spec: Any, base: str, causes: list[c.Cause]) -> None:
    if type(spec) is not dict:
        return
    check_non_negative(
        spec,
        base,
        ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"),
        causes,
    )
    deadline = spec.get("activeDeadlineSeconds")
    if type(deadline) is int and deadline <= 0:
        causes.append(
            c.invalid(f"{base}.activeDeadlineSeconds", deadline, "must be greater than 0")
        )
    mode = spec.get("completionMode")
    if mode is not None and mode not in _COMPLETION_MODES:
        causes.append(c.not_supported(f"{base}.completionMode", mode, _COMPLETION_MODES))
    if mode == "Indexed" and spec.get("completions") is None:
        causes.append(c.required(f"{base}.completions", "when completion mode is Indexed"))
    selector = spec.get("selector")
    template = spec.get("template")
    if type(selector) is dict:
        validate_label_selector(selector, f"{base}.selector", causes)
        labels = (
            ((template or {}).get("metadata") or {}).get("labels") or {}
            if type(template) is dict
            else {}
        )
        if type(labels) is dict and not selector_matches(selector, labels):
            causes.append(
                c.invalid(
                    f"{base}.template.metadata.labels",
                    go_string_map(labels),
                    "`selector` does not match template `labels`",
                )
            )
    if type(template) is dict:
        validate_pod_template(template, f"{base}.template", causes, _JOB_RESTART)


def validate_job(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = obj.get("spec")
    validate_job_spec(spec, "spec", causes)
    if old is None or type(spec) is not dict or type(old.get("spec")) is not dict:
        return
    old_spec = old["spec"]
    causes.extend(
        c.invalid(f"spec.{key}", spec.get(key), "field is immutable")
        for key in ("selector", "completions", "completionMode")
        if spec.get(key) != old_spec.get(key)
    )
    if spec.get("template") != old_spec.get("template"):
        causes.append(c.invalid("spec.template", "<template>", "field is immutable"))


def validate_cron_job(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if type(name) is str and len(name) > _CRON_JOB_NAME_LIMIT:
        causes.append(
            c.invalid(
                "metadata.name", name, f"must be no more than {_CRON_JOB_NAME_LIMIT} characters"
            )
        )
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    schedule = spec.get("schedule")
    if type(schedule) is str and schedule:
        causes.extend(
            c.invalid("spec.schedule", schedule, message)
            for message in cron_schedule_errors(schedule)
        )
    policy = spec.get("concurrencyPolicy")
    if policy is not None and policy not in _CONCURRENCY:
        causes.append(c.not_supported("spec.concurrencyPolicy", policy, _CONCURRENCY))
    check_non_negative(
        spec,
        "spec",
        ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"),
        causes,
    )
    template = spec.get("jobTemplate")
    if type(template) is dict:
        validate_job_spec(template.get("spec"), "spec.jobTemplate.spec", causes)
