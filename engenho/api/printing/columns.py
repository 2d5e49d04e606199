"""Column definitions of ``meta.k8s.io/v1 Table`` and the columns many kinds share.

Descriptions are the API field documentation upstream's printers attach (its ``SwaggerDoc()``
lookups), taken from the v1 field docs; kubectl never shows them, but other Table clients do.
"""

from __future__ import annotations

from attrs import frozen

__all__ = [
    "AGE",
    "CONTAINERS",
    "CREATION_TIMESTAMP_DOC",
    "IMAGES",
    "NAME",
    "NAME_DOC",
    "ColumnDefinition",
    "column",
    "wide",
]

NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATION_TIMESTAMP_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


@frozen
class ColumnDefinition:
    """One ``columnDefinitions[]`` entry; ``priority`` 1 columns appear only with ``-o wide``."""

    name: str
    type: str
    description: str
    format: str = ""
    priority: int = 0

    def to_json(self) -> dict[str, str | int]:
        # Every field is always present upstream (no omitempty), in this order.
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def column(name: str, description: str, cell_type: str = "string") -> ColumnDefinition:
    """A column shown by default."""
    return ColumnDefinition(name=name, type=cell_type, description=description)


def wide(name: str, description: str, cell_type: str = "string") -> ColumnDefinition:
    """A column shown only with ``-o wide``."""
    return ColumnDefinition(name=name, type=cell_type, description=description, priority=1)


NAME = ColumnDefinition(name="Name", type="string", description=NAME_DOC, format="name")
AGE = column("Age", CREATION_TIMESTAMP_DOC)
CONTAINERS = wide("Containers", "Names of each container in the template.")
IMAGES = wide("Images", "Images referenced by each container in the template.")
