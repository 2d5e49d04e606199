"""PersistentVolumeClaims.

Capacity and Access Modes come from the bound volume (``status``) and stay empty until
``spec.volumeName`` is set. Access modes are abbreviated in upstream's fixed order (RWO, ROX,
RWX, RWOP). StorageClass prefers the beta annotation over ``spec.storageClassName``. VolumeMode
is a wide column upstream fills even without ``-o wide``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import age
from engenho.api.printing.columns import AGE, NAME, column, wide
from engenho.api.printing.fields import dig, mapping, sequence, string
from engenho.api.printing.formatting import UNSET
from engenho.api.printing.printer import Printer, Row

__all__ = [
    "PERSISTENT_VOLUME_CLAIM",
    "access_modes",
    "persistent_volume_claim_row",
]

_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes(modes: object) -> str:
    present = set(sequence(modes))
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def persistent_volume_claim_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata, spec = mapping(obj.get("metadata")), mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    phase = string(status.get("phase"))
    if metadata.get("deletionTimestamp") is not None:
        phase = "Terminating"
    volume = string(spec.get("volumeName"))
    capacity = modes = ""
    if volume:
        modes = access_modes(status.get("accessModes"))
        capacity = string(dig(status, "capacity", "storage")) or "0"
    annotations = mapping(metadata.get("annotations"))
    if _BETA_STORAGE_CLASS in annotations:
        storage_class = string(annotations[_BETA_STORAGE_CLASS])
    else:
        storage_class = string(spec.get("storageClassName"))
    attributes_class = spec.get("volumeAttributesClassName")
    volume_mode = spec.get("volumeMode")
    return Row(
        cells=(
            string(metadata.get("name")),
            phase,
            volume,
            capacity,
            modes,
            storage_class,
            attributes_class if isinstance(attributes_class, str) else UNSET,
            age(metadata.get("creationTimestamp"), now),
            volume_mode if isinstance(volume_mode, str) else UNSET,
        )
    )


PERSISTENT_VOLUME_CLAIM = Printer(
    kind="PersistentVolumeClaim",
    version="v1",
    columns=(
        NAME,
        column(
            "Status",
            "phase represents the current phase of PersistentVolumeClaim.",
        ),
        column(
            "Volume",
            "volumeName is the binding reference to the PersistentVolume backing this claim.",
        ),
        column("Capacity", "capacity represents the actual resources of the underlying volume."),
        column(
            "Access Modes",
            "accessModes contains the actual access modes the volume backing the PVC has. More "
            "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
        ),
        column("StorageClass", "StorageClass of the pvc"),
        column("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        AGE,
        wide(
            "VolumeMode",
            "volumeMode defines what type of volume is required by the claim. Value of "
            "Filesystem is implied when not included in claim spec.",
        ),
    ),
    row=persistent_volume_claim_row,
)
