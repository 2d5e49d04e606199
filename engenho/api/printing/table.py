"""The printer registry and the Table a list or watch response carries.

A server prints wide: every row holds the cells of every column, and each column's priority
tells kubectl whether to show it without ``-o wide`` (as upstream's table convertor does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engenho.api.printing import cluster, config, jobs, pods, rbac, services, storage, workloads
from engenho.api.printing.default import DEFAULT_COLUMNS, default_row
from engenho.api.printing.errors import InvalidIncludeObjectError
from engenho.api.printing.printer import Printer

__all__ = [
    "INCLUDE_OBJECT_MODES",
    "PRINTERS",
    "column_definitions",
    "printer_for",
    "table",
]

INCLUDE_OBJECT_MODES = frozenset({"None", "Metadata", "Object"})

PRINTERS: Mapping[tuple[str, str], Printer] = {
    ("", "configmaps"): config.CONFIG_MAP,
    ("", "endpoints"): services.ENDPOINTS,
    ("", "events"): cluster.EVENT,
    ("", "namespaces"): cluster.NAMESPACE,
    ("", "nodes"): cluster.NODE,
    ("", "persistentvolumeclaims"): storage.PERSISTENT_VOLUME_CLAIM,
    ("", "pods"): pods.POD,
    ("", "resourcequotas"): cluster.RESOURCE_QUOTA,
    ("", "secrets"): config.SECRET,
    ("", "serviceaccounts"): config.SERVICE_ACCOUNT,
    ("", "services"): services.SERVICE,
    ("apps", "controllerrevisions"): workloads.CONTROLLER_REVISION,
    ("apps", "daemonsets"): workloads.DAEMON_SET,
    ("apps", "deployments"): workloads.DEPLOYMENT,
    ("apps", "replicasets"): workloads.REPLICA_SET,
    ("apps", "statefulsets"): workloads.STATEFUL_SET,
    ("batch", "cronjobs"): jobs.CRON_JOB,
    ("batch", "jobs"): jobs.JOB,
    ("coordination.k8s.io", "leases"): cluster.LEASE,
    ("discovery.k8s.io", "endpointslices"): services.ENDPOINT_SLICE,
    ("policy", "poddisruptionbudgets"): workloads.POD_DISRUPTION_BUDGET,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): rbac.CLUSTER_ROLE_BINDING,
    ("rbac.authorization.k8s.io", "rolebindings"): rbac.ROLE_BINDING,
}
"""Printers by (API group, resource). Everything else prints the default table."""


def printer_for(resource: str, group: str) -> Printer | None:
    return PRINTERS.get((group, resource))


def column_definitions(resource: str, group: str) -> list[dict[str, str | int]]:
    """The ``columnDefinitions`` of ``resource`` in ``group`` ("" for the core group)."""
    printer = printer_for(resource, group)
    columns = DEFAULT_COLUMNS if printer is None else printer.columns
    return [c.to_json() for c in columns]


def table(
    resource: str,
    group: str,
    objects: Sequence[Mapping[str, Any]],
    *,
    list_meta: Mapping[str, Any],
    include_object: str = "Metadata",
    now: datetime,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1 Table`` of ``objects`` (a list, or one object of a watch event).

    ``list_meta`` becomes the Table's metadata (resourceVersion, continue,
    remainingItemCount). ``include_object`` is the request's ``includeObject``: ``Metadata``
    (the default, also for "") puts each object's metadata in its row, ``Object`` the whole
    object, ``None`` nothing. ``now`` is the moment Age cells are measured from.

    Raises InvalidIncludeObjectError for any other ``include_object``.
    """
    mode = include_object or "Metadata"
    if mode not in INCLUDE_OBJECT_MODES:
        raise InvalidIncludeObjectError(include_object)
    printer = printer_for(resource, group)
    rows = [_row(printer, group, obj, mode, now) for obj in objects]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": column_definitions(resource, group),
        "rows": rows,
    }


def _row(
    printer: Printer | None, group: str, obj: Mapping[str, Any], mode: str, now: datetime
) -> dict[str, Any]:
    built = default_row(obj, now) if printer is None else printer.row(obj, now)
    row: dict[str, Any] = {"cells": list(built.cells)}
    if built.conditions:
        row["conditions"] = [c.to_json() for c in built.conditions]
    if mode == "Metadata":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {},
        }
    elif mode == "Object":
        row["object"] = _complete(obj, printer, group)
    return row


def _complete(obj: Mapping[str, Any], printer: Printer | None, group: str) -> Mapping[str, Any]:
    """The object with ``apiVersion`` and ``kind`` filled in where a list item lacks them:
    kubectl decodes ``includeObject=Object`` rows (for ``--sort-by``) and needs the kind."""
    if printer is None or ("kind" in obj and "apiVersion" in obj):
        return obj
    api_version = f"{group}/{printer.version}" if group else printer.version
    return {"apiVersion": api_version, "kind": printer.kind, **obj}
