"""Pod and pod-template rules (the subset of upstream ``ValidatePodSpec`` users hit first).

Covered: containers present, container names unique DNS labels, image present and trimmed,
port ranges and unique port names, env var names, volume names and sources, volume mounts
that name a volume, resource requests within limits, one probe handler, restart and DNS
policy constraints, tolerations, and the pod update rule (only images, activeDeadlineSeconds,
added tolerations, removed scheduling gates (and, while gated, added node selector terms)
and a negative grace period set to 1 may change).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from engenho.schema import causes as c
from engenho.schema.quantity import Quantity, is_quantity
from engenho.schema.rules.meta import add_invalid, validate_annotations, validate_labels
from engenho.schema.rules.names import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    env_var_name_errors,
    iana_svc_name_errors,
    label_value_errors,
    qualified_name_errors,
)

__all__ = ["validate_pod", "validate_pod_spec", "validate_pod_template"]

_PORT_RANGE = "must be between 1 and 65535, inclusive"
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)


def validate_pod(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    validate_pod_spec(obj.get("spec"), "spec", causes)
    if old is not None:
        _validate_pod_update(obj.get("spec"), old.get("spec"), causes)


def validate_pod_template(
    template: Any,
    base: str,
    causes: list[c.Cause],
    restart_policies: Sequence[str] = (),
    claim_names: frozenset[str] = frozenset(),
) -> None:
    """A ``PodTemplateSpec`` at ``base`` (``spec.template``)."""
    if type(template) is not dict:
        causes.append(c.required(f"{base}.spec.containers"))
        return
    metadata = template.get("metadata")
    if type(metadata) is dict:
        if "labels" in metadata:
            validate_labels(metadata["labels"], f"{base}.metadata.labels", causes)
        if "annotations" in metadata:
            validate_annotations(metadata["annotations"], f"{base}.metadata.annotations", causes)
    validate_pod_spec(template.get("spec"), f"{base}.spec", causes, restart_policies, claim_names)


def validate_pod_spec(
    spec: Any,
    base: str,
    causes: list[c.Cause],
    restart_policies: Sequence[str] = (),
    claim_names: frozenset[str] = frozenset(),
) -> None:
    """``claim_names`` are volumes a controller adds (a StatefulSet's volumeClaimTemplates)."""
    if type(spec) is not dict:
        causes.append(c.required(f"{base}.containers"))
        return
    volumes = spec.get("volumes")
    volume_names = _validate_volumes(volumes, base, causes) if type(volumes) is list else set()
    volume_names |= claim_names
    containers = spec.get("containers")
    if not containers:
        causes.append(c.required(f"{base}.containers"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        members = spec.get(group)
        if type(members) is list:
            for index, container in enumerate(members):
                if type(container) is dict:
                    _validate_container(container, (base, group, index), seen, volume_names, causes)
    # Validation sees defaulted objects upstream, where an absent policy is already Always.
    restart = spec.get("restartPolicy") or "Always"
    if restart_policies and restart not in restart_policies:
        causes.append(c.not_supported(f"{base}.restartPolicy", restart, restart_policies))
    if spec.get("dnsPolicy") == "None" and not spec.get("dnsConfig"):
        causes.append(
            c.required(f"{base}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
        )
    deadline = spec.get("activeDeadlineSeconds")
    if type(deadline) is int and deadline < 1:
        causes.append(
            c.invalid(
                f"{base}.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
        )
    grace = spec.get("terminationGracePeriodSeconds")
    if type(grace) is int and grace < 0:
        causes.append(
            c.invalid(
                f"{base}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"
            )
        )
    if "nodeSelector" in spec:
        validate_labels(spec["nodeSelector"], f"{base}.nodeSelector", causes)
    account = spec.get("serviceAccountName")
    if account and type(account) is str:
        add_invalid(
            causes, f"{base}.serviceAccountName", account, dns1123_subdomain_errors(account)
        )
    for key in ("hostname", "subdomain"):
        value = spec.get(key)
        if value and type(value) is str:
            errors = dns1123_label_errors(value)
            if errors:
                add_invalid(causes, f"{base}.{key}", value, errors)
    tolerations = spec.get("tolerations")
    if type(tolerations) is list:
        _validate_tolerations(tolerations, f"{base}.tolerations", causes)


def _validate_volumes(volumes: list[Any], base: str, causes: list[c.Cause]) -> set[str]:
    names: set[str] = set()
    for index, volume in enumerate(volumes):
        if type(volume) is not dict:
            continue
        path = f"{base}.volumes[{index}]"
        name = volume.get("name")
        if type(name) is str and name:
            errors = dns1123_label_errors(name)
            if errors:
                add_invalid(causes, f"{path}.name", name, errors)
            if name in names:
                causes.append(c.duplicate(f"{path}.name", name))
            names.add(name)
        sources = [key for key, value in volume.items() if key != "name" and value is not None]
        if not sources:
            causes.append(c.required(path, "must specify a volume type"))
        elif len(sources) > 1:
            causes.append(
                c.forbidden(f"{path}.{sources[1]}", "may not specify more than 1 volume type")
            )
    return names


# A container's location, (spec path, "containers" or "initContainers", index): paths are
# only rendered when a rule fails, since most writes are valid.
_Where = tuple[str, str, int]


def _at(where: _Where, suffix: str) -> str:
    return f"{where[0]}.{where[1]}[{where[2]}]{suffix}"


def _validate_container(
    container: Mapping[str, Any],
    where: _Where,
    seen: set[str],
    volume_names: set[str],
    causes: list[c.Cause],
) -> None:
    name = container.get("name")
    if type(name) is str and name:
        errors = dns1123_label_errors(name)
        if errors:
            add_invalid(causes, _at(where, ".name"), name, errors)
        if name in seen:
            causes.append(c.duplicate(_at(where, ".name"), name))
        seen.add(name)
    image = container.get("image")
    if not image:
        causes.append(c.required(_at(where, ".image")))
    elif type(image) is str and image != image.strip():
        causes.append(
            c.invalid(_at(where, ".image"), image, "must not have leading or trailing whitespace")
        )
    ports = container.get("ports")
    if type(ports) is list:
        _validate_ports(ports, where, causes)
    env = container.get("env")
    if type(env) is list:
        for index, variable in enumerate(env):
            if type(variable) is dict:
                env_name = variable.get("name")
                if type(env_name) is str and env_name:
                    errors = env_var_name_errors(env_name)
                    if errors:
                        add_invalid(causes, _at(where, f".env[{index}].name"), env_name, errors)
    mounts = container.get("volumeMounts")
    if type(mounts) is list:
        _validate_mounts(mounts, where, volume_names, causes)
    resources = container.get("resources")
    if type(resources) is dict:
        _validate_resources(resources, where, causes)
    for probe in _PROBES:
        value = container.get(probe)
        if type(value) is dict:
            handlers = [h for h in _HANDLERS if value.get(h) is not None]
            if not handlers:
                causes.append(c.required(_at(where, f".{probe}"), "must specify a handler type"))
            elif len(handlers) > 1:
                causes.append(
                    c.forbidden(
                        _at(where, f".{probe}.{handlers[1]}"),
                        "may not specify more than 1 handler type",
                    )
                )


def _validate_ports(ports: list[Any], where: _Where, causes: list[c.Cause]) -> None:
    names: set[str] = set()
    for index, port in enumerate(ports):
        if type(port) is not dict:
            continue
        number = port.get("containerPort")
        if type(number) is int and not 1 <= number <= 65535:
            causes.append(
                c.invalid(_at(where, f".ports[{index}].containerPort"), number, _PORT_RANGE)
            )
        host = port.get("hostPort")
        if type(host) is int and host != 0 and not 1 <= host <= 65535:
            causes.append(c.invalid(_at(where, f".ports[{index}].hostPort"), host, _PORT_RANGE))
        name = port.get("name")
        if type(name) is str and name:
            errors = iana_svc_name_errors(name)
            if errors:
                add_invalid(causes, _at(where, f".ports[{index}].name"), name, errors)
            if name in names:
                causes.append(c.duplicate(_at(where, f".ports[{index}].name"), name))
            names.add(name)


def _validate_mounts(
    mounts: list[Any], where: _Where, volume_names: set[str], causes: list[c.Cause]
) -> None:
    paths: set[str] = set()
    for index, mount in enumerate(mounts):
        if type(mount) is not dict:
            continue
        name = mount.get("name")
        if type(name) is str and name and name not in volume_names:
            causes.append(c.not_found(_at(where, f".volumeMounts[{index}].name"), name))
        mount_path = mount.get("mountPath")
        if type(mount_path) is str and mount_path:
            if mount_path in paths:
                field = _at(where, f".volumeMounts[{index}].mountPath")
                causes.append(c.invalid(field, mount_path, "must be unique"))
            paths.add(mount_path)


@functools.lru_cache(maxsize=4096)
def _nanos(raw: str | int | float) -> int | None:
    """The exact value of a JSON quantity in nano-units; None when malformed."""
    return Quantity.from_json(raw).nanos if is_quantity(raw) else None


def _quantities(values: Any, where: _Where, kind: str, causes: list[c.Cause]) -> dict[str, int]:
    parsed: dict[str, int] = {}
    if type(values) is not dict:
        return parsed
    for resource, raw in values.items():
        nanos = _nanos(raw) if type(raw) in (str, int, float) else None
        if nanos is None:
            continue  # reported by structural validation
        errors = qualified_name_errors(resource)
        if errors:
            add_invalid(causes, _at(where, f".resources.{kind}[{resource}]"), resource, errors)
        if nanos < 0:
            causes.append(
                c.invalid(
                    _at(where, f".resources.{kind}[{resource}]"),
                    Quantity.from_json(raw).canonical(),
                    "must be greater than or equal to 0",
                )
            )
        parsed[resource] = nanos
    return parsed


def _validate_resources(resources: dict[str, Any], where: _Where, causes: list[c.Cause]) -> None:
    limits = _quantities(resources.get("limits"), where, "limits", causes)
    requests = _quantities(resources.get("requests"), where, "requests", causes)
    if not limits or not requests:
        return
    for resource, request in requests.items():
        limit = limits.get(resource)
        if limit is not None and request > limit:
            causes.append(
                c.invalid(
                    _at(where, f".resources.requests[{resource}]"),
                    Quantity.from_json(resources["requests"][resource]).canonical(),
                    f"must be less than or equal to {resource} limit of "
                    f"{Quantity.from_json(resources['limits'][resource]).canonical()}",
                )
            )


def _validate_tolerations(tolerations: list[Any], base: str, causes: list[c.Cause]) -> None:
    for index, toleration in enumerate(tolerations):
        if type(toleration) is not dict:
            continue
        path = f"{base}[{index}]"
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or ""
        value = toleration.get("value") or ""
        if key:
            errors = qualified_name_errors(key)
            if errors:
                add_invalid(causes, f"{path}.key", key, errors)
        elif operator != "Exists":
            causes.append(
                c.invalid(
                    f"{path}.operator",
                    operator,
                    "operator must be Exists when `key` is empty, which means "
                    '"match all values and all keys"',
                )
            )
        if (
            toleration.get("tolerationSeconds") is not None
            and toleration.get("effect") != "NoExecute"
        ):
            causes.append(
                c.invalid(
                    f"{path}.effect",
                    toleration.get("effect") or "",
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if operator in ("Equal", "") and type(value) is str:
            errors = label_value_errors(value)
            if errors:
                causes.append(c.invalid(f"{path}.operator", value, ";".join(errors)))
        elif operator == "Exists" and value:
            causes.append(
                c.invalid(
                    f"{path}.operator", value, "value must be empty when `operator` is 'Exists'"
                )
            )


def _masked(spec: Any, old_spec: Any) -> tuple[Any, Any]:
    """Copies of both specs with the fields a pod update may change made equal."""
    if type(spec) is not dict or type(old_spec) is not dict:
        return spec, old_spec
    new, old = dict(spec), dict(old_spec)
    for group in ("containers", "initContainers"):
        new_list, old_list = new.get(group), old.get(group)
        if type(new_list) is list and type(old_list) is list and len(new_list) == len(old_list):
            merged = []
            for new_item, old_item in zip(new_list, old_list, strict=True):
                both = type(new_item) is dict and type(old_item) is dict
                merged.append({**new_item, "image": old_item.get("image")} if both else new_item)
            new[group] = merged
    mutable = ["activeDeadlineSeconds"]
    old_tolerations = old.get("tolerations") or []
    new_tolerations = new.get("tolerations") or []
    if type(new_tolerations) is list and all(t in new_tolerations for t in old_tolerations):
        mutable.append("tolerations")  # only additions
    old_gates = old.get("schedulingGates") or []
    new_gates = new.get("schedulingGates") or []
    if type(old_gates) is list and type(new_gates) is list:
        if all(g in old_gates for g in new_gates):
            mutable.append("schedulingGates")  # only removals (upstream since 1.27)
        if old_gates:
            # A gated pod's scheduling directives may be narrowed (1.27's mutable directives).
            old_selector = old.get("nodeSelector") or {}
            new_selector = new.get("nodeSelector") or {}
            narrowed = (
                type(old_selector) is dict
                and type(new_selector) is dict
                and all(new_selector.get(k) == v for k, v in old_selector.items())
            )
            if narrowed:
                mutable.append("nodeSelector")
    old_grace = old.get("terminationGracePeriodSeconds")
    if type(old_grace) is int and old_grace < 0 and new.get("terminationGracePeriodSeconds") == 1:
        mutable.append("terminationGracePeriodSeconds")
    for key in mutable:
        new.pop(key, None)
        old.pop(key, None)
    return new, old


def _validate_pod_update(spec: Any, old_spec: Any, causes: list[c.Cause]) -> None:
    new, old = _masked(spec, old_spec)
    if new != old:
        causes.append(c.forbidden("spec", _POD_UPDATE_MESSAGE))
