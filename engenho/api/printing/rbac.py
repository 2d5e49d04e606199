"""RoleBindings and ClusterRoleBindings: Name, Role, Age (wide: Users, Groups, ServiceAccounts).

Role is ``Kind/name`` of the roleRef. Subjects are split by kind and joined with ``", "``;
service accounts print as ``namespace/name``; subjects of other kinds are not shown. Roles and
ClusterRoles have no printer upstream and get the default table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import age
from engenho.api.printing.columns import AGE, NAME, ColumnDefinition, column, wide
from engenho.api.printing.fields import dig, mapping, sequence, string
from engenho.api.printing.printer import Printer, Row

__all__ = [
    "CLUSTER_ROLE_BINDING",
    "ROLE_BINDING",
    "binding_row",
]


def binding_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    users: list[str] = []
    groups: list[str] = []
    service_accounts: list[str] = []
    for raw in sequence(obj.get("subjects")):
        subject = mapping(raw)
        kind, name = subject.get("kind"), string(subject.get("name"))
        if kind == "ServiceAccount":
            service_accounts.append(f"{string(subject.get('namespace'))}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    role = f"{string(dig(obj, 'roleRef', 'kind'))}/{string(dig(obj, 'roleRef', 'name'))}"
    return Row(
        cells=(
            string(metadata.get("name")),
            role,
            age(metadata.get("creationTimestamp"), now),
            ", ".join(users),
            ", ".join(groups),
            ", ".join(service_accounts),
        )
    )


def _columns(kind: str, role_doc: str) -> tuple[ColumnDefinition, ...]:
    return (
        NAME,
        column("Role", role_doc),
        AGE,
        wide("Users", f"Users in the {kind}"),
        wide("Groups", f"Groups in the {kind}"),
        wide("ServiceAccounts", f"ServiceAccounts in the {kind}"),
    )


ROLE_BINDING = Printer(
    kind="RoleBinding",
    version="v1",
    columns=_columns(
        "roleBinding",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global "
        "namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    row=binding_row,
)

CLUSTER_ROLE_BINDING = Printer(
    kind="ClusterRoleBinding",
    version="v1",
    columns=_columns(
        "clusterRoleBinding",
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef "
        "cannot be resolved, the Authorizer must return an error.",
    ),
    row=binding_row,
)
