"""Cluster-level records: Nodes, Namespaces, Events, Leases and ResourceQuotas.

Node Status comes from the Ready condition only (``Ready``, ``NotReady``, or ``Unknown`` when
there is none), with ``,SchedulingDisabled`` for a cordoned node; Roles are the sorted set of
``node-role.kubernetes.io/<role>`` label suffixes and ``kubernetes.io/role`` values.

Event columns are upstream's odd order (the wide ones sit between the default ones). Last Seen
falls back to First Seen, First Seen to ``eventTime``, and an event series overrides both the
last time and the count; a count of zero shows as 1.

Quantities (ResourceQuota cells) print as stored: the API keeps them in canonical form, which is
what upstream's ``Quantity.String()`` would print; a missing ``used`` entry is ``0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import UNKNOWN, age, parse_time
from engenho.api.printing.columns import AGE, NAME, NAME_DOC, ColumnDefinition, column, wide
from engenho.api.printing.fields import boolean, dig, integer, mapping, sequence, string
from engenho.api.printing.labels import NONE
from engenho.api.printing.printer import Printer, Row

__all__ = [
    "EVENT",
    "LEASE",
    "NAMESPACE",
    "NODE",
    "RESOURCE_QUOTA",
    "event_row",
    "lease_row",
    "namespace_row",
    "node_row",
    "resource_quota_row",
]

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def node_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata, status = mapping(obj.get("metadata")), mapping(obj.get("status"))
    info = mapping(status.get("nodeInfo"))
    ready = None
    for condition in sequence(status.get("conditions")):
        if dig(condition, "type") == "Ready":
            ready = mapping(condition)  # the last one wins, as in upstream's condition map
    states = ["Unknown" if ready is None else _ready_state(ready)]
    if boolean(dig(obj, "spec", "unschedulable")):
        states.append("SchedulingDisabled")
    return Row(
        cells=(
            string(metadata.get("name")),
            ",".join(states),
            ",".join(_roles(mapping(metadata.get("labels")))) or NONE,
            age(metadata.get("creationTimestamp"), now),
            string(info.get("kubeletVersion")),
            _address(status, "InternalIP"),
            _address(status, "ExternalIP"),
            string(info.get("osImage")) or UNKNOWN,
            string(info.get("kernelVersion")) or UNKNOWN,
            string(info.get("containerRuntimeVersion")) or UNKNOWN,
        )
    )


def _ready_state(condition: Mapping[str, Any]) -> str:
    return "Ready" if condition.get("status") == "True" else "NotReady"


def _roles(labels: Mapping[str, Any]) -> list[str]:
    roles = set()
    for key, value in labels.items():
        if key.startswith(_ROLE_PREFIX) and len(key) > len(_ROLE_PREFIX):
            roles.add(key.removeprefix(_ROLE_PREFIX))
        elif key == _ROLE_LABEL and string(value):
            roles.add(string(value))
    return sorted(roles)


def _address(status: Mapping[str, Any], kind: str) -> str:
    for address in sequence(status.get("addresses")):
        if dig(address, "type") == kind:
            return string(dig(address, "address"))
    return NONE


def namespace_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    return Row(
        cells=(
            string(metadata.get("name")),
            string(dig(obj, "status", "phase")),
            age(metadata.get("creationTimestamp"), now),
        )
    )


def event_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    involved = mapping(obj.get("involvedObject"))
    first_seen = age(obj.get("firstTimestamp"), now)
    if parse_time(obj.get("firstTimestamp")) is None:
        first_seen = age(obj.get("eventTime"), now)
    last_seen = age(obj.get("lastTimestamp"), now)
    if parse_time(obj.get("lastTimestamp")) is None:
        last_seen = first_seen
    count = integer(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, Mapping):
        last_seen = age(series.get("lastObservedTime"), now)
        count = integer(series.get("count"))
    elif count == 0:
        count = 1  # singleton events written through events.k8s.io carry no count
    kind, name = string(involved.get("kind")).lower(), string(involved.get("name"))
    source = mapping(obj.get("source"))
    component = string(source.get("component")) or string(obj.get("reportingController"))
    instance = string(source.get("host")) or string(obj.get("reportingInstance"))
    return Row(
        cells=(
            last_seen,
            string(obj.get("type")),
            string(obj.get("reason")),
            f"{kind}/{name}" if name else kind,
            string(involved.get("fieldPath")),
            f"{component}, {instance}" if instance else component,
            string(obj.get("message")).strip(),
            first_seen,
            count,
            string(metadata.get("name")),
        )
    )


def lease_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    return Row(
        cells=(
            string(metadata.get("name")),
            string(dig(obj, "spec", "holderIdentity")),
            age(metadata.get("creationTimestamp"), now),
        )
    )


def resource_quota_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata, status = mapping(obj.get("metadata")), mapping(obj.get("status"))
    hard, used = mapping(status.get("hard")), mapping(status.get("used"))
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        pieces = resource.split(".")
        target = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        target.append(f"{resource}: {_quantity(used.get(resource))}/{_quantity(hard[resource])}")
    return Row(
        cells=(
            string(metadata.get("name")),
            ", ".join(requests),
            ", ".join(limits),
            age(metadata.get("creationTimestamp"), now),
        )
    )


def _quantity(value: object) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return "0"


_NODE_ADDRESSES_DOC = (
    "List of addresses reachable to the node. Queried from cloud provider, if available. More "
    "info: https://kubernetes.io/docs/concepts/nodes/node/#addresses Note: This field is "
    "declared as mergeable, but the merge key is not sufficiently unique, which can cause data "
    "corruption when it is merged. Callers should instead use a full-replacement patch. See "
    "https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change "
    "during the lifetime of a Node. However, there are some exceptions where this may not be "
    "possible, such as Pods that inherit a Node's address in its own status or consumers of "
    "the downward API (status.hostIP)."
)

NODE = Printer(
    kind="Node",
    version="v1",
    columns=(
        NAME,
        column("Status", "The status of the node"),
        column("Roles", "The roles of the node"),
        AGE,
        column("Version", "Kubelet Version reported by the node."),
        wide("Internal-IP", _NODE_ADDRESSES_DOC),
        wide("External-IP", _NODE_ADDRESSES_DOC),
        wide(
            "OS-Image",
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 "
            "(wheezy)).",
        ),
        wide(
            "Kernel-Version",
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        ),
        wide(
            "Container-Runtime",
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
            "containerd://1.4.2).",
        ),
    ),
    row=node_row,
)

NAMESPACE = Printer(
    kind="Namespace",
    version="v1",
    columns=(NAME, column("Status", "The status of the namespace"), AGE),
    row=namespace_row,
)

EVENT = Printer(
    kind="Event",
    version="v1",
    columns=(
        column(
            "Last Seen",
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        column(
            "Type", "Type of this event (Normal, Warning), new types could be added in the future"
        ),
        column(
            "Reason",
            "This should be a short, machine understandable string that gives the reason for "
            "the transition into the object's current status.",
        ),
        column("Object", "The object that this event is about."),
        wide(
            "Subobject",
            "If referring to a piece of an object instead of an entire object, this string "
            "should contain a valid JSON/Go field access statement, such as "
            "desiredState.manifest.containers[2]. For example, if the object reference is to a "
            'container within a pod, this would take on a value like: "spec.containers{name}" '
            '(where "name" refers to the name of the container that triggered the event) or if '
            'no container name is specified "spec.containers[2]" (container with index 2 in '
            "this pod). This syntax is chosen only to have some well-defined way of referencing "
            "a part of an object.",
        ),
        wide(
            "Source",
            "The component reporting this event. Should be a short machine understandable string.",
        ),
        column("Message", "A human-readable description of the status of this operation."),
        wide(
            "First Seen",
            "The time at which the event was first recorded. (Time of server receipt is in "
            "TypeMeta.)",
        ),
        wide("Count", "The number of times this event has occurred."),
        ColumnDefinition(
            name="Name", type="string", description=NAME_DOC, format="name", priority=1
        ),
    ),
    row=event_row,
)

LEASE = Printer(
    kind="Lease",
    version="v1",
    columns=(
        NAME,
        column("Holder", "holderIdentity contains the identity of the holder of a current lease."),
        AGE,
    ),
    row=lease_row,
)

RESOURCE_QUOTA = Printer(
    kind="ResourceQuota",
    version="v1",
    columns=(
        NAME,
        column(
            "Request",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        column(
            "Limit",
            "Limits control the maximum amount of cpu/memory that a container may use "
            "independent of contention on the node.",
        ),
        AGE,
    ),
    row=resource_quota_row,
)
