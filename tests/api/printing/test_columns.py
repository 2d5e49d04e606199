"""Column definitions: for every resource with a printer (and the default table) the exact
columns ``kubectl get`` shows with and without ``-o wide``, in upstream's order and names, and
the shape every definition has on the wire."""

from __future__ import annotations

import pytest

from engenho.api.printing import ColumnDefinition, column_definitions
from engenho.api.printing.table import PRINTERS

_WORKLOAD_WIDE = ["Containers", "Images", "Selector"]

# (group, resource): (columns shown by default, columns added by -o wide)
COLUMNS: dict[tuple[str, str], tuple[list[str], list[str]]] = {
    ("", "pods"): (
        ["Name", "Ready", "Status", "Restarts", "Age"],
        ["IP", "Node", "Nominated Node", "Readiness Gates"],
    ),
    ("", "nodes"): (
        ["Name", "Status", "Roles", "Age", "Version"],
        ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"],
    ),
    ("", "namespaces"): (["Name", "Status", "Age"], []),
    ("", "services"): (
        ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
        ["Selector"],
    ),
    ("", "endpoints"): (["Name", "Endpoints", "Age"], []),
    ("discovery.k8s.io", "endpointslices"): (
        ["Name", "AddressType", "Ports", "Endpoints", "Age"],
        [],
    ),
    ("", "configmaps"): (["Name", "Data", "Age"], []),
    ("", "secrets"): (["Name", "Type", "Data", "Age"], []),
    ("", "serviceaccounts"): (["Name", "Secrets", "Age"], []),
    ("", "events"): (
        ["Last Seen", "Type", "Reason", "Object", "Message"],
        ["Subobject", "Source", "First Seen", "Count", "Name"],
    ),
    ("", "resourcequotas"): (["Name", "Request", "Limit", "Age"], []),
    ("", "persistentvolumeclaims"): (
        [
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "VolumeAttributesClass",
            "Age",
        ],
        ["VolumeMode"],
    ),
    ("apps", "deployments"): (["Name", "Ready", "Up-to-date", "Available", "Age"], _WORKLOAD_WIDE),
    ("apps", "replicasets"): (["Name", "Desired", "Current", "Ready", "Age"], _WORKLOAD_WIDE),
    ("apps", "statefulsets"): (["Name", "Ready", "Age"], ["Containers", "Images"]),
    ("apps", "daemonsets"): (
        ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"],
        _WORKLOAD_WIDE,
    ),
    ("apps", "controllerrevisions"): (["Name", "Controller", "Revision", "Age"], []),
    ("batch", "jobs"): (["Name", "Status", "Completions", "Duration", "Age"], _WORKLOAD_WIDE),
    ("batch", "cronjobs"): (
        ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"],
        _WORKLOAD_WIDE,
    ),
    ("coordination.k8s.io", "leases"): (["Name", "Holder", "Age"], []),
    ("rbac.authorization.k8s.io", "rolebindings"): (
        ["Name", "Role", "Age"],
        ["Users", "Groups", "ServiceAccounts"],
    ),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (
        ["Name", "Role", "Age"],
        ["Users", "Groups", "ServiceAccounts"],
    ),
    ("policy", "poddisruptionbudgets"): (
        ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"],
        [],
    ),
}
DEFAULT = (["Name", "Created At"], [])
DEFAULTED = [
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("", "limitranges"),
    ("events.k8s.io", "events"),
    ("apps", "pods"),  # a resource name means nothing outside its group
    ("example.com", "widgets"),
]


def test_every_printer_is_listed_here() -> None:
    assert set(PRINTERS) == set(COLUMNS)


@pytest.mark.parametrize(
    ("group", "resource", "expected"),
    [(g, r, cols) for (g, r), cols in COLUMNS.items()] + [(g, r, DEFAULT) for g, r in DEFAULTED],
)
def test_columns(group: str, resource: str, expected: tuple[list[str], list[str]]) -> None:
    definitions = column_definitions(resource, group)
    default = [d["name"] for d in definitions if d["priority"] == 0]
    added = [d["name"] for d in definitions if d["priority"] == 1]
    assert (default, added) == expected
    # The wide columns follow the default ones, except for events (upstream interleaves them).
    if resource != "events":
        assert [d["name"] for d in definitions] == default + added


@pytest.mark.parametrize(("group", "resource"), [*COLUMNS, *DEFAULTED])
def test_definition_shape(group: str, resource: str) -> None:
    for definition in column_definitions(resource, group):
        assert list(definition) == ["name", "type", "format", "description", "priority"]
        assert definition["type"] in {"string", "integer", "boolean", "date"}
        assert definition["priority"] in {0, 1}
        assert str(definition["name"])[:1].isupper()
        assert definition["description"]
        assert definition["format"] == ("name" if definition["name"] == "Name" else "")


def test_name_and_age_are_shared() -> None:
    pods = column_definitions("pods", "")
    assert (
        pods[0]["description"]
        == column_definitions("leases", "coordination.k8s.io")[0]["description"]
    )
    assert pods[4]["name"] == "Age"
    assert pods[4]["description"].startswith("CreationTimestamp is a timestamp")
    created_at = column_definitions("roles", "rbac.authorization.k8s.io")[1]
    assert created_at["type"] == "date"
    assert created_at["description"] == pods[4]["description"]


def test_column_definition_record() -> None:
    column = ColumnDefinition(name="Ready", type="string", description="d")
    assert column.to_json() == {
        "name": "Ready",
        "type": "string",
        "format": "",
        "description": "d",
        "priority": 0,
    }
    assert column == ColumnDefinition(name="Ready", type="string", description="d")
    assert hash(column) == hash(ColumnDefinition(name="Ready", type="string", description="d"))
