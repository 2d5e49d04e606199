"""Defaulting: fill the absent fields users expect to see back (contract §17).

Defaults only fill ABSENT fields, where absent means missing, ``null``, or (for strings)
empty, exactly as Go's defaulters see zero values. Two sources, applied in order:

1. schema defaults the spec gives with a meaning (``protocol: TCP`` on ports), found by a
   walk compiled per definition that only enters subtrees holding such defaults;
2. per-kind defaulters mirroring upstream's ``SetDefaults_*`` functions.

The spec's zero-value defaults (``""``, ``0``, ``false``, ``{}``) only mark Go fields that
are always serialised; upstream never applies them and neither do we, since filling
``name: ""`` would hide a missing container name.

Create-only server actions (Job selector generation, Namespace finalizers, Pod status) are
the apiserver's create strategy, not defaults: they must not re-run on every update.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Callable
from typing import Any

from engenho.schema.model import Definition, TypeKind, TypeSpec
from engenho.schema.registry import DEFINITIONS, definition_for

__all__ = ["default"]

_Json = dict[str, Any]
_TRIVIAL = frozenset({'""', "0", "false", "{}", "[]"})


def default(obj: _Json) -> _Json:
    """Apply defaults to ``obj`` in place and return it (for chaining).

    Raises :class:`~engenho.schema.UnknownResourceError` when ``apiVersion``/``kind`` name no
    known kind.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    key = (api_version, kind)
    steps = _PLANS.get(key)  # type: ignore[arg-type]
    if steps is None:
        steps = _plan(str(api_version), str(kind))
    for step in steps:
        step(obj)
    return obj


# ---------------------------------------------------------------------------------------------
# Schema defaults


_Walker = Callable[[Any], None]
_WALKERS: dict[str, _Walker | None] = {}


def _schema_walker(name: str) -> _Walker | None:
    """A function applying the meaningful schema defaults below ``name``; None if there are none."""
    if name in _WALKERS:
        return _WALKERS[name]
    _WALKERS[name] = None  # guards recursion; replaced below
    definition = DEFINITIONS[name]
    fills: list[tuple[str, Any]] = []
    descents: list[tuple[str, _Walker]] = []
    for field in definition.fields:
        if field.has_default and field.default_json not in _TRIVIAL and not field.required:
            fills.append((field.name, field.default))
        walker = _spec_walker(field.type)
        if walker is not None:
            descents.append((field.name, walker))
    if not fills and not descents:
        return None

    def walk(obj: Any) -> None:
        if type(obj) is not dict:
            return
        for key, value in fills:
            if obj.get(key) in (None, ""):
                obj[key] = copy.deepcopy(value) if isinstance(value, dict | list) else value
        for key, child in descents:
            value = obj.get(key)
            if value is not None:
                child(value)

    _WALKERS[name] = walk
    return walk


def _spec_walker(spec: TypeSpec) -> _Walker | None:
    if spec.kind is TypeKind.OBJECT:
        return _schema_walker(spec.ref)
    if spec.kind in (TypeKind.ARRAY, TypeKind.MAP) and spec.items is not None:
        inner = _spec_walker(spec.items)
        if inner is None:
            return None
        if spec.kind is TypeKind.ARRAY:

            def each_item(value: Any) -> None:
                if type(value) is list:
                    for item in value:
                        inner(item)

            return each_item

        def each_value(value: Any) -> None:
            if type(value) is dict:
                for item in value.values():
                    inner(item)

        return each_value
    return None


# ---------------------------------------------------------------------------------------------
# Per-kind defaulters


def _fill(obj: _Json, key: str, value: Any) -> None:
    if obj.get(key) in (None, ""):
        obj[key] = value


def _child(obj: _Json, key: str) -> _Json:
    """``obj[key]``, created as ``{}`` when absent (only for fields we are about to default)."""
    value = obj.get(key)
    if type(value) is not dict:
        value = obj[key] = {}
    return value


@functools.lru_cache(maxsize=4096)
def _pull_policy(image: str) -> str:
    name = image.split("@", 1)[0]
    if name != image:
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        return "Always" if tag == "latest" else "IfNotPresent"
    last = name.rpartition("/")[2]
    tag = last.rpartition(":")[2] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


_PROBE_DEFAULTS = (
    ("timeoutSeconds", 1),
    ("periodSeconds", 10),
    ("successThreshold", 1),
    ("failureThreshold", 3),
)


def _default_probe(probe: Any) -> None:
    if type(probe) is not dict:
        return
    for key, value in _PROBE_DEFAULTS:
        if probe.get(key) is None:
            probe[key] = value
    http = probe.get("httpGet")
    if type(http) is dict:
        _fill(http, "path", "/")
        _fill(http, "scheme", "HTTP")


def _default_container(container: Any) -> None:
    if type(container) is not dict:
        return
    _fill(container, "terminationMessagePath", "/dev/termination-log")
    _fill(container, "terminationMessagePolicy", "File")
    if container.get("imagePullPolicy") in (None, ""):
        image = container.get("image")
        container["imagePullPolicy"] = _pull_policy(image if type(image) is str else "")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            _default_probe(container[probe])
    env = container.get("env")
    if type(env) is list:
        for variable in env:
            source = variable.get("valueFrom") if type(variable) is dict else None
            field_ref = source.get("fieldRef") if type(source) is dict else None
            if type(field_ref) is dict:
                _fill(field_ref, "apiVersion", "v1")


_MODE_VOLUMES = ("secret", "configMap", "downwardAPI", "projected")


def _default_pod_spec(spec: Any) -> None:
    if type(spec) is not dict:
        return
    _fill(spec, "dnsPolicy", "ClusterFirst")
    _fill(spec, "restartPolicy", "Always")
    _fill(spec, "schedulerName", "default-scheduler")
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    for group in ("initContainers", "containers", "ephemeralContainers"):
        members = spec.get(group)
        if type(members) is list:
            for container in members:
                _default_container(container)
    volumes = spec.get("volumes")
    if type(volumes) is list:
        for volume in volumes:
            if type(volume) is not dict:
                continue
            for source in _MODE_VOLUMES:
                value = volume.get(source)
                if type(value) is dict and value.get("defaultMode") is None:
                    value["defaultMode"] = 0o644


def _default_template(template: Any) -> None:
    if type(template) is dict:
        _default_pod_spec(template.get("spec"))


def _default_pod(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    _default_pod_spec(spec)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    host_network = spec.get("hostNetwork") is True
    for group in ("initContainers", "containers"):
        members = spec.get(group)
        if type(members) is not list:
            continue
        for container in members:
            if type(container) is not dict:
                continue
            resources = container.get("resources")
            if type(resources) is dict and type(resources.get("limits")) is dict:
                requests = _child(resources, "requests")
                for name, limit in resources["limits"].items():
                    if name not in requests:
                        requests[name] = limit
            if host_network and type(container.get("ports")) is list:
                for port in container["ports"]:
                    if type(port) is dict and port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")


def _default_deployment(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _child(spec, "strategy")
    _fill(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        _fill(rolling, "maxUnavailable", "25%")
        _fill(rolling, "maxSurge", "25%")
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec.get("template"))


def _default_replica_set(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec.get("template"))


def _default_replication_controller(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if type(template) is dict else None
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = _child(obj, "metadata")
        if not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    _default_template(template)


def _default_stateful_set(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _fill(spec, "podManagementPolicy", "OrderedReady")
    strategy = _child(spec, "updateStrategy")
    _fill(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        if rolling.get("partition") is None:
            rolling["partition"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    _fill(retention, "whenDeleted", "Retain")
    _fill(retention, "whenScaled", "Retain")
    _default_template(spec.get("template"))


def _default_daemon_set(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    strategy = _child(spec, "updateStrategy")
    _fill(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        _fill(rolling, "maxUnavailable", 1)
        _fill(rolling, "maxSurge", 0)
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_template(spec.get("template"))


def _default_job_spec(spec: Any) -> None:
    if type(spec) is not dict:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    _fill(spec, "completionMode", "NonIndexed")
    if spec.get("backoffLimit") is None:
        per_index = (
            spec.get("completionMode") == "Indexed" and spec.get("backoffLimitPerIndex") is not None
        )
        spec["backoffLimit"] = 2**31 - 1 if per_index else 6
    if spec.get("suspend") is None:
        spec["suspend"] = False
    _fill(
        spec,
        "podReplacementPolicy",
        "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed",
    )
    _default_template(spec.get("template"))


def _default_job(obj: _Json) -> None:
    _default_job_spec(obj.get("spec"))


def _default_cron_job(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    _fill(spec, "concurrencyPolicy", "Allow")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    template = spec.get("jobTemplate")
    if type(template) is dict:
        _default_job_spec(template.get("spec"))


def _default_service(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is not dict:
        return
    _fill(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _child(_child(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip.get("timeoutSeconds") is None:
            client_ip["timeoutSeconds"] = 10800
    _fill(spec, "type", "ClusterIP")
    kind = spec["type"]
    ports = spec.get("ports")
    if type(ports) is list:
        for port in ports:
            if type(port) is dict and port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
    if kind in ("NodePort", "LoadBalancer"):
        _fill(spec, "externalTrafficPolicy", "Cluster")
    if kind != "ExternalName":
        _fill(spec, "internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def _default_secret(obj: _Json) -> None:
    _fill(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if type(string_data) is dict:
        # stringData is write-only: merged into data (base64) and never stored, as upstream.
        data = _child(obj, "data")
        for key, value in string_data.items():
            if type(value) is str:
                data[key] = base64.b64encode(value.encode()).decode()


def _default_namespace(obj: _Json) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if type(name) is str and name:
        labels = _child(_child(obj, "metadata"), "labels")
        labels["kubernetes.io/metadata.name"] = name
    status = _child(obj, "status")
    _fill(status, "phase", "Active")


def _default_pvc(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is dict:
        _fill(spec, "volumeMode", "Filesystem")
    _fill(_child(obj, "status"), "phase", "Pending")


def _default_pv(obj: _Json) -> None:
    spec = obj.get("spec")
    if type(spec) is dict:
        _fill(spec, "persistentVolumeReclaimPolicy", "Retain")
        _fill(spec, "volumeMode", "Filesystem")
    _fill(_child(obj, "status"), "phase", "Pending")


def _default_node(obj: _Json) -> None:
    status = obj.get("status")
    if (
        type(status) is dict
        and status.get("allocatable") is None
        and type(status.get("capacity")) is dict
    ):
        status["allocatable"] = dict(status["capacity"])


def _default_endpoints(obj: _Json) -> None:
    for subset in obj.get("subsets") or ():
        for port in (subset.get("ports") or ()) if type(subset) is dict else ():
            if type(port) is dict:
                _fill(port, "protocol", "TCP")


def _default_endpoint_slice(obj: _Json) -> None:
    for port in obj.get("ports") or ():
        if type(port) is dict:
            _fill(port, "protocol", "TCP")


def _default_subjects(obj: _Json) -> None:
    for subject in obj.get("subjects") or ():
        if type(subject) is not dict:
            continue
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            _fill(subject, "apiGroup", "")
        elif kind in ("User", "Group"):
            _fill(subject, "apiGroup", "rbac.authorization.k8s.io")


def _default_pod_template(obj: _Json) -> None:
    _default_template(obj.get("template"))


_KIND_DEFAULTERS: dict[tuple[str, str], Callable[[_Json], None]] = {
    ("v1", "Endpoints"): _default_endpoints,
    ("v1", "Namespace"): _default_namespace,
    ("v1", "Node"): _default_node,
    ("v1", "PersistentVolume"): _default_pv,
    ("v1", "PersistentVolumeClaim"): _default_pvc,
    ("v1", "Pod"): _default_pod,
    ("v1", "PodTemplate"): _default_pod_template,
    ("v1", "ReplicationController"): _default_replication_controller,
    ("v1", "Secret"): _default_secret,
    ("v1", "Service"): _default_service,
    ("apps/v1", "DaemonSet"): _default_daemon_set,
    ("apps/v1", "Deployment"): _default_deployment,
    ("apps/v1", "ReplicaSet"): _default_replica_set,
    ("apps/v1", "StatefulSet"): _default_stateful_set,
    ("batch/v1", "CronJob"): _default_cron_job,
    ("batch/v1", "Job"): _default_job,
    ("discovery.k8s.io/v1", "EndpointSlice"): _default_endpoint_slice,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _default_subjects,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _default_subjects,
}

_PLANS: dict[tuple[str, str], tuple[Callable[[_Json], None], ...]] = {}


def _plan(api_version: str, kind: str) -> tuple[Callable[[_Json], None], ...]:
    definition: Definition = definition_for(api_version, kind)
    steps: list[Callable[[_Json], None]] = []
    walker = _schema_walker(definition.name)
    if walker is not None:
        steps.append(walker)
    kind_defaulter = _KIND_DEFAULTERS.get((api_version, kind))
    if kind_defaulter is not None:
        steps.append(kind_defaulter)
    plan = tuple(steps)
    _PLANS[(api_version, kind)] = plan
    return plan


def schema_defaults() -> dict[str, dict[str, Any]]:
    """Every meaningful schema default, by definition and field (for docs and tests)."""
    found: dict[str, dict[str, Any]] = {}
    for name, definition in DEFINITIONS.items():
        for field in definition.fields:
            if field.has_default and field.default_json not in _TRIVIAL and not field.required:
                found.setdefault(name, {})[field.name] = json.loads(field.default_json)
    return found
