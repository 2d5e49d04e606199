"""rbac.authorization.k8s.io/v1 rules: policy rules, role references, subjects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.meta import add_invalid
from engenho.schema.rules.names import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    path_segment_errors,
)

__all__ = ["validate_cluster_role", "validate_role", "validate_role_binding"]

_GROUP = "rbac.authorization.k8s.io"
_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _validate_rules(rules: Any, *, namespaced: bool, causes: list[c.Cause]) -> None:
    if type(rules) is not list:
        return
    for index, rule in enumerate(rules):
        if type(rule) is not dict:
            continue
        path = f"rules[{index}]"
        urls = rule.get("nonResourceURLs") or []
        if namespaced and urls:
            causes.append(
                c.invalid(
                    f"{path}.nonResourceURLs",
                    urls,
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if urls and (rule.get("resources") or rule.get("resourceNames")):
            causes.append(
                c.invalid(
                    f"{path}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        if not urls:
            if not rule.get("apiGroups"):
                causes.append(
                    c.required(
                        f"{path}.apiGroups", "resource rules must supply at least one api group"
                    )
                )
            if not rule.get("resources"):
                causes.append(
                    c.required(
                        f"{path}.resources", "resource rules must supply at least one resource"
                    )
                )


def validate_role(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    _validate_rules(obj.get("rules"), namespaced=True, causes=causes)


def validate_cluster_role(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    # An aggregated ClusterRole's rules are filled by the controller; they still must be valid.
    _validate_rules(obj.get("rules"), namespaced=False, causes=causes)


def validate_role_binding(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    cluster = obj.get("kind") == "ClusterRoleBinding"
    role_ref = obj.get("roleRef")
    if type(role_ref) is dict:
        if role_ref.get("apiGroup") and role_ref.get("apiGroup") != _GROUP:
            causes.append(c.not_supported("roleRef.apiGroup", role_ref.get("apiGroup"), (_GROUP,)))
        kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
        if role_ref.get("kind") and role_ref.get("kind") not in kinds:
            causes.append(c.not_supported("roleRef.kind", role_ref.get("kind"), kinds))
        name = role_ref.get("name")
        if type(name) is str and name:
            add_invalid(causes, "roleRef.name", name, path_segment_errors(name))
    subjects = obj.get("subjects")
    if type(subjects) is list:
        for index, subject in enumerate(subjects):
            if type(subject) is dict:
                _validate_subject(subject, f"subjects[{index}]", cluster, causes)
    if old is not None and old.get("roleRef") != role_ref:
        causes.append(c.invalid("roleRef", role_ref, "cannot change roleRef"))


def _validate_subject(
    subject: Mapping[str, Any], path: str, cluster: bool, causes: list[c.Cause]
) -> None:
    kind = subject.get("kind")
    name = subject.get("name")
    group = subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if type(name) is str and name:
            errors = dns1123_subdomain_errors(name)
            if errors:
                add_invalid(causes, f"{path}.name", name, errors)
        if group:
            causes.append(c.not_supported(f"{path}.apiGroup", group, ("",)))
        namespace = subject.get("namespace")
        if cluster and not namespace:
            causes.append(c.required(f"{path}.namespace"))
        elif type(namespace) is str and namespace:
            errors = dns1123_label_errors(namespace)
            if errors:
                add_invalid(causes, f"{path}.namespace", namespace, errors)
    elif kind in ("User", "Group"):
        if group != _GROUP:
            causes.append(c.not_supported(f"{path}.apiGroup", group, (_GROUP,)))
    elif kind:
        causes.append(c.not_supported(f"{path}.kind", kind, _SUBJECT_KINDS))
