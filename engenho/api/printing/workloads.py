"""Controllers of pods: Deployments, ReplicaSets, StatefulSets, DaemonSets, their
ControllerRevisions, and PodDisruptionBudgets.

Column types are upstream's even where its cells disagree with them (Deployment Up-to-date and
Available are declared ``string`` but sent as integers; a ControllerRevision's Revision too):
clients written against upstream see the same JSON here. An absent ``spec.replicas`` reads as
its API default of 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import age
from engenho.api.printing.columns import AGE, CONTAINERS, IMAGES, NAME, column, wide
from engenho.api.printing.fields import boolean, dig, integer, mapping, sequence, string
from engenho.api.printing.formatting import containers_and_images, int_or_string
from engenho.api.printing.labels import (
    NONE,
    format_label_selector,
    format_labels,
    selector_string,
)
from engenho.api.printing.printer import Printer, Row

__all__ = [
    "CONTROLLER_REVISION",
    "DAEMON_SET",
    "DEPLOYMENT",
    "POD_DISRUPTION_BUDGET",
    "REPLICA_SET",
    "STATEFUL_SET",
    "controller_revision_row",
    "daemon_set_row",
    "deployment_row",
    "pod_disruption_budget_row",
    "replica_set_row",
    "stateful_set_row",
]

_READY_DOC = "Number of the pod with ready state"
_LABEL_SELECTORS = "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
_DAEMON_SETS = "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
_REPLICATION_CONTROLLERS = (
    "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
    "#what-is-a-replicationcontroller"
)


def _template_spec(obj: Mapping[str, Any]) -> object:
    return dig(obj, "spec", "template", "spec")


def _common(obj: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    metadata = mapping(obj.get("metadata"))
    return string(metadata.get("name")), age(metadata.get("creationTimestamp"), now)


def deployment_row(obj: Mapping[str, Any], now: datetime) -> Row:
    name, created = _common(obj, now)
    spec, status = mapping(obj.get("spec")), mapping(obj.get("status"))
    selector = selector_string(spec.get("selector"))
    return Row(
        cells=(
            name,
            f"{integer(status.get('readyReplicas'))}/{integer(spec.get('replicas'), 1)}",
            integer(status.get("updatedReplicas")),
            integer(status.get("availableReplicas")),
            created,
            *containers_and_images(_template_spec(obj)),
            "<invalid>" if selector is None else selector,
        )
    )


def replica_set_row(obj: Mapping[str, Any], now: datetime) -> Row:
    name, created = _common(obj, now)
    spec, status = mapping(obj.get("spec")), mapping(obj.get("status"))
    return Row(
        cells=(
            name,
            integer(spec.get("replicas"), 1),
            integer(status.get("replicas")),
            integer(status.get("readyReplicas")),
            created,
            *containers_and_images(_template_spec(obj)),
            format_label_selector(spec.get("selector")),
        )
    )


def stateful_set_row(obj: Mapping[str, Any], now: datetime) -> Row:
    name, created = _common(obj, now)
    spec, status = mapping(obj.get("spec")), mapping(obj.get("status"))
    return Row(
        cells=(
            name,
            f"{integer(status.get('readyReplicas'))}/{integer(spec.get('replicas'), 1)}",
            created,
            *containers_and_images(_template_spec(obj)),
        )
    )


def daemon_set_row(obj: Mapping[str, Any], now: datetime) -> Row:
    name, created = _common(obj, now)
    spec, status = mapping(obj.get("spec")), mapping(obj.get("status"))
    return Row(
        cells=(
            name,
            integer(status.get("desiredNumberScheduled")),
            integer(status.get("currentNumberScheduled")),
            integer(status.get("numberReady")),
            integer(status.get("updatedNumberScheduled")),
            integer(status.get("numberAvailable")),
            format_labels(dig(_template_spec(obj), "nodeSelector")),
            created,
            *containers_and_images(_template_spec(obj)),
            format_label_selector(spec.get("selector")),
        )
    )


def controller_revision_row(obj: Mapping[str, Any], now: datetime) -> Row:
    name, created = _common(obj, now)
    owners = sequence(dig(obj, "metadata", "ownerReferences"))
    controller = next((mapping(o) for o in owners if boolean(dig(o, "controller"))), None)
    return Row(
        cells=(
            name,
            NONE if controller is None else _owner_name(controller),
            integer(obj.get("revision")),
            created,
        )
    )


def _owner_name(owner: Mapping[str, Any]) -> str:
    """``kind.group/name`` in lower case, as upstream's ``formatResourceName`` writes it."""
    api_version = string(owner.get("apiVersion"))
    group = api_version.split("/", 1)[0] if api_version.count("/") == 1 else ""
    kind = string(owner.get("kind"))
    group_kind = f"{kind}.{group}" if group else kind
    name = string(owner.get("name"))
    return f"{group_kind.lower()}/{name}" if group_kind else name


def pod_disruption_budget_row(obj: Mapping[str, Any], now: datetime) -> Row:
    name, created = _common(obj, now)
    spec = mapping(obj.get("spec"))
    minimum, maximum = spec.get("minAvailable"), spec.get("maxUnavailable")
    return Row(
        cells=(
            name,
            "N/A" if minimum is None else int_or_string(minimum),
            "N/A" if maximum is None else int_or_string(maximum),
            integer(dig(obj, "status", "disruptionsAllowed")),
            created,
        )
    )


DEPLOYMENT = Printer(
    kind="Deployment",
    version="v1",
    columns=(
        NAME,
        column("Ready", _READY_DOC),
        column(
            "Up-to-date",
            "Total number of non-terminated pods targeted by this deployment that have the "
            "desired template spec.",
        ),
        column(
            "Available",
            "Total number of available pods (ready for at least minReadySeconds) targeted by "
            "this deployment.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide(
            "Selector",
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will "
            "be the ones affected by this deployment. It must match the pod template's labels.",
        ),
    ),
    row=deployment_row,
)

REPLICA_SET = Printer(
    kind="ReplicaSet",
    version="v1",
    columns=(
        NAME,
        column(
            "Desired",
            "Replicas is the number of desired replicas. This is a pointer to distinguish "
            "between explicit zero and unspecified. Defaults to 1. More info: "
            + _REPLICATION_CONTROLLERS,
            "integer",
        ),
        column(
            "Current",
            "Replicas is the most recently observed number of replicas. More info: "
            + _REPLICATION_CONTROLLERS,
            "integer",
        ),
        column(
            "Ready",
            "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready "
            "Condition.",
            "integer",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide(
            "Selector",
            "Selector is a label query over pods that should match the replica count. Label "
            "keys and values that must match in order to be controlled by this replica set. It "
            "must match the pod template's labels. More info: "
            + _LABEL_SELECTORS
            + "#label-selectors",
        ),
    ),
    row=replica_set_row,
)

STATEFUL_SET = Printer(
    kind="StatefulSet",
    version="v1",
    columns=(NAME, column("Ready", _READY_DOC), AGE, CONTAINERS, IMAGES),
    row=stateful_set_row,
)

DAEMON_SET = Printer(
    kind="DaemonSet",
    version="v1",
    columns=(
        NAME,
        column(
            "Desired",
            "The total number of nodes that should be running the daemon pod (including nodes "
            "correctly running the daemon pod). More info: " + _DAEMON_SETS,
            "integer",
        ),
        column(
            "Current",
            "The number of nodes that are running at least 1 daemon pod and are supposed to run "
            "the daemon pod. More info: " + _DAEMON_SETS,
            "integer",
        ),
        column(
            "Ready",
            "numberReady is the number of nodes that should be running the daemon pod and have "
            "one or more of the daemon pod running with a Ready Condition.",
            "integer",
        ),
        column(
            "Up-to-date",
            "The total number of nodes that are running updated daemon pod",
            "integer",
        ),
        column(
            "Available",
            "The number of nodes that should be running the daemon pod and have one or more of "
            "the daemon pod running and available (ready for at least spec.minReadySeconds)",
            "integer",
        ),
        column(
            "Node Selector",
            "NodeSelector is a selector which must be true for the pod to fit on a node. "
            "Selector which must match a node's labels for the pod to be scheduled on that "
            "node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide(
            "Selector",
            "A label query over pods that are managed by the daemon set. Must match in order to "
            "be controlled. It must match the pod template's labels. More info: "
            + _LABEL_SELECTORS
            + "#label-selectors",
        ),
    ),
    row=daemon_set_row,
)

CONTROLLER_REVISION = Printer(
    kind="ControllerRevision",
    version="v1",
    columns=(
        NAME,
        column("Controller", "Controller of the object"),
        column("Revision", "Revision indicates the revision of the state represented by Data."),
        AGE,
    ),
    row=controller_revision_row,
)

POD_DISRUPTION_BUDGET = Printer(
    kind="PodDisruptionBudget",
    version="v1",
    columns=(
        NAME,
        column("Min Available", "The minimum number of pods that must be available."),
        column("Max Unavailable", "The maximum number of pods that may be unavailable."),
        column(
            "Allowed Disruptions",
            "Calculated number of pods that may be disrupted at this time.",
            "integer",
        ),
        AGE,
    ),
    row=pod_disruption_budget_row,
)
