"""ConfigMaps, Secrets and ServiceAccounts: counts of what they hold.

Upstream declares each count column ``string`` and sends an integer; both are kept as sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.api.printing.age import age
from engenho.api.printing.columns import AGE, NAME, column
from engenho.api.printing.fields import mapping, sequence, string
from engenho.api.printing.printer import Printer, Row

__all__ = [
    "CONFIG_MAP",
    "SECRET",
    "SERVICE_ACCOUNT",
    "config_map_row",
    "secret_row",
    "service_account_row",
]


def config_map_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    held = len(mapping(obj.get("data"))) + len(mapping(obj.get("binaryData")))
    return Row(
        cells=(string(metadata.get("name")), held, age(metadata.get("creationTimestamp"), now))
    )


def secret_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    # An absent type reads as its API default; stringData is merged into data on write.
    kind = obj.get("type")
    return Row(
        cells=(
            string(metadata.get("name")),
            kind if isinstance(kind, str) else "Opaque",
            len(mapping(obj.get("data"))),
            age(metadata.get("creationTimestamp"), now),
        )
    )


def service_account_row(obj: Mapping[str, Any], now: datetime) -> Row:
    metadata = mapping(obj.get("metadata"))
    return Row(
        cells=(
            string(metadata.get("name")),
            len(sequence(obj.get("secrets"))),
            age(metadata.get("creationTimestamp"), now),
        )
    )


CONFIG_MAP = Printer(
    kind="ConfigMap",
    version="v1",
    columns=(
        NAME,
        column(
            "Data",
            "Data contains the configuration data. Each key must consist of alphanumeric "
            "characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the "
            "BinaryData field. The keys stored in Data must not overlap with the keys in the "
            "BinaryData field, this is enforced during validation process.",
        ),
        AGE,
    ),
    row=config_map_row,
)

SECRET = Printer(
    kind="Secret",
    version="v1",
    columns=(
        NAME,
        column(
            "Type",
            "Used to facilitate programmatic handling of secret data. More info: "
            "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
        ),
        column(
            "Data",
            "Data contains the secret data. Each key must consist of alphanumeric characters, "
            "'-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, "
            "representing the arbitrary (possibly non-string) data value here. Described in "
            "https://tools.ietf.org/html/rfc4648#section-4",
        ),
        AGE,
    ),
    row=secret_row,
)

SERVICE_ACCOUNT = Printer(
    kind="ServiceAccount",
    version="v1",
    columns=(
        NAME,
        column(
            "Secrets",
            "Secrets is a list of the secrets in the same namespace that pods running using "
            "this ServiceAccount are allowed to use. Pods are only limited to this list if this "
            'service account has a "kubernetes.io/enforce-mountable-secrets" annotation set to '
            '"true". This field should not be used to find auto-generated service account token '
            "secrets for use outside of pods. Instead, tokens can be requested directly using "
            "the TokenRequest API, or service account token secrets can be manually created. "
            "More info: https://kubernetes.io/docs/concepts/configuration/secret",
        ),
        AGE,
    ),
    row=service_account_row,
)
