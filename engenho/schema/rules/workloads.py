"""apps/v1 workloads and ReplicationController: selectors, templates, strategies, updates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.meta import validate_labels
from engenho.schema.rules.pods import validate_pod_template
from engenho.schema.rules.selectors import (
    go_label_selector,
    go_string_map,
    selector_matches,
    validate_label_selector,
)

__all__ = [
    "check_non_negative",
    "check_selected_template",
    "validate_daemon_set",
    "validate_deployment",
    "validate_int_or_percent",
    "validate_replica_set",
    "validate_replication_controller",
    "validate_stateful_set",
]

_ALWAYS = ("Always",)
_PERCENT = re.compile(r"[0-9]+%")
_PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  "
    "or '93%', regex used for validation is '[0-9]+%')"
)
_STATEFUL_SET_UPDATE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def check_non_negative(
    spec: Mapping[str, Any], base: str, keys: tuple[str, ...], causes: list[c.Cause]
) -> None:
    for key in keys:
        value = spec.get(key)
        if type(value) is int and value < 0:
            causes.append(c.invalid(f"{base}.{key}", value, "must be greater than or equal to 0"))


def validate_int_or_percent(
    value: Any, path: str, causes: list[c.Cause], *, at_most_100: bool = False
) -> None:
    if type(value) is int:
        if value < 0:
            causes.append(c.invalid(path, value, "must be greater than or equal to 0"))
    elif type(value) is str:
        if _PERCENT.fullmatch(value) is None:
            causes.append(c.invalid(path, value, _PERCENT_MSG))
        elif at_most_100 and int(value[:-1]) > 100:
            causes.append(c.invalid(path, value, "must not be greater than 100%"))


def _is_zero(value: Any) -> bool:
    return value in (0, "0%")


def check_selected_template(
    spec: Mapping[str, Any],
    base: str,
    kind: str,
    causes: list[c.Cause],
    *,
    restart: tuple[str, ...] = _ALWAYS,
    claim_names: frozenset[str] = frozenset(),
) -> None:
    """A LabelSelector-based workload: selector valid and non-empty, template selected by it."""
    selector = spec.get("selector")
    template = spec.get("template")
    if type(selector) is dict:
        validate_label_selector(selector, f"{base}.selector", causes)
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(
                c.invalid(
                    f"{base}.selector",
                    go_label_selector(selector),
                    f"empty selector is invalid for {kind}",
                )
            )
        elif type(template) is dict:
            labels = (template.get("metadata") or {}).get("labels") or {}
            if type(labels) is dict and not selector_matches(selector, labels):
                causes.append(
                    c.invalid(
                        f"{base}.template.metadata.labels",
                        go_string_map(labels),
                        "`selector` does not match template `labels`",
                    )
                )
    if type(template) is dict:
        validate_pod_template(template, f"{base}.template", causes, restart, claim_names)


def _selector_immutable(spec: Any, old_spec: Any, causes: list[c.Cause]) -> None:
    if type(spec) is not dict or type(old_spec) is not dict:
        return
    if spec.get("selector") != old_spec.get("selector"):
        causes.append(
            c.invalid(
                "spec.selector", go_label_selector(spec.get("selector")), "field is immutable"
            )
        )


def _spec(obj: Mapping[str, Any], causes: list[c.Cause]) -> Mapping[str, Any] | None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        causes.append(c.required("spec.selector"))
        causes.append(c.required("spec.template.spec.containers"))
        return None
    return spec


def validate_deployment(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = _spec(obj, causes)
    if spec is None:
        return
    check_selected_template(spec, "spec", "deployment", causes)
    check_non_negative(
        spec, "spec", ("replicas", "minReadySeconds", "revisionHistoryLimit"), causes
    )
    strategy = spec.get("strategy")
    if type(strategy) is dict:
        rolling = strategy.get("rollingUpdate")
        if strategy.get("type") == "Recreate" and rolling is not None:
            causes.append(
                c.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            )
        elif type(rolling) is dict:
            base = "spec.strategy.rollingUpdate"
            unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
            validate_int_or_percent(unavailable, f"{base}.maxUnavailable", causes, at_most_100=True)
            validate_int_or_percent(surge, f"{base}.maxSurge", causes)
            if _is_zero(unavailable) and _is_zero(surge):
                causes.append(
                    c.invalid(
                        f"{base}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0"
                    )
                )
    deadline = spec.get("progressDeadlineSeconds")
    if type(deadline) is int:
        if deadline <= 0:
            causes.append(
                c.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than 0")
            )
        elif deadline <= (spec.get("minReadySeconds") or 0):
            causes.append(
                c.invalid(
                    "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
                )
            )
    if old is not None:
        _selector_immutable(spec, old.get("spec"), causes)


def validate_replica_set(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = _spec(obj, causes)
    if spec is None:
        return
    check_selected_template(spec, "spec", "replicaset", causes)
    check_non_negative(spec, "spec", ("replicas", "minReadySeconds"), causes)
    if old is not None:
        _selector_immutable(spec, old.get("spec"), causes)


def validate_daemon_set(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = _spec(obj, causes)
    if spec is None:
        return
    check_selected_template(spec, "spec", "daemonset", causes)
    check_non_negative(spec, "spec", ("minReadySeconds", "revisionHistoryLimit"), causes)
    strategy = spec.get("updateStrategy")
    if type(strategy) is dict and type(strategy.get("rollingUpdate")) is dict:
        base = "spec.updateStrategy.rollingUpdate"
        rolling = strategy["rollingUpdate"]
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        validate_int_or_percent(unavailable, f"{base}.maxUnavailable", causes, at_most_100=True)
        validate_int_or_percent(surge, f"{base}.maxSurge", causes, at_most_100=True)
        if _is_zero(unavailable) and _is_zero(surge):
            causes.append(
                c.invalid(
                    f"{base}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0"
                )
            )
    if old is not None:
        _selector_immutable(spec, old.get("spec"), causes)


def validate_stateful_set(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = _spec(obj, causes)
    if spec is None:
        return
    claims = spec.get("volumeClaimTemplates")
    claim_names = frozenset(
        str((claim.get("metadata") or {}).get("name"))
        for claim in (claims if type(claims) is list else ())
        if type(claim) is dict
    )
    check_selected_template(spec, "spec", "statefulset", causes, claim_names=claim_names)
    check_non_negative(
        spec, "spec", ("replicas", "minReadySeconds", "revisionHistoryLimit"), causes
    )
    strategy = spec.get("updateStrategy")
    if type(strategy) is dict:
        rolling = strategy.get("rollingUpdate")
        if strategy.get("type") == "OnDelete" and rolling is not None:
            causes.append(
                c.invalid(
                    "spec.updateStrategy.rollingUpdate",
                    rolling,
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
        elif type(rolling) is dict:
            check_non_negative(rolling, "spec.updateStrategy.rollingUpdate", ("partition",), causes)
            if "maxUnavailable" in rolling:
                validate_int_or_percent(
                    rolling["maxUnavailable"],
                    "spec.updateStrategy.rollingUpdate.maxUnavailable",
                    causes,
                    at_most_100=True,
                )
    if old is not None and type(old.get("spec")) is dict:
        mutable = (
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        )
        new_rest = {k: v for k, v in spec.items() if k not in mutable}
        old_rest = {k: v for k, v in old["spec"].items() if k not in mutable}
        if new_rest != old_rest:
            causes.append(c.forbidden("spec", _STATEFUL_SET_UPDATE))


def validate_replication_controller(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    check_non_negative(spec, "spec", ("replicas", "minReadySeconds"), causes)
    selector = spec.get("selector")
    template = spec.get("template")
    if type(selector) is dict:
        validate_labels(selector, "spec.selector", causes)
        if not selector:
            causes.append(c.required("spec.selector"))
    if type(template) is dict:
        labels = (template.get("metadata") or {}).get("labels") or {}
        selected = type(selector) is dict and selector and type(labels) is dict
        if selected and any(labels.get(k) != v for k, v in selector.items()):  # type: ignore[union-attr]
            causes.append(
                c.invalid(
                    "spec.template.metadata.labels",
                    go_string_map(labels),
                    "`selector` does not match template `labels`",
                )
            )
        validate_pod_template(template, "spec.template", causes, _ALWAYS)
    else:
        causes.append(c.required("spec.template"))
