"""Python names for wire names: snake_case attributes, enum members, module names.

Acronym plurals are the classic trap (``nonResourceURLs`` must not become
``non_resource_ur_ls``); the table test in ``tests/schema/test_naming.py`` pins them.
Wire names are never derived back from Python names: every field records its wire name.
"""

from __future__ import annotations

import keyword
import re

__all__ = ["enum_member_name", "module_for", "pascal_case", "snake_case"]

_ACRONYM_PLURAL = re.compile(r"([A-Z]{2,})s(?=[A-Z0-9_]|$)")
_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")
# Spelled-out versions that read better as one word than split at the case change.
_WORDS = {"IPv4": "Ipv4", "IPv6": "Ipv6"}


def snake_case(name: str) -> str:
    """``nonResourceURLs`` -> ``non_resource_urls``; keywords get a trailing underscore."""
    for word, replacement in _WORDS.items():
        name = name.replace(word, replacement)
    name = _ACRONYM_PLURAL.sub(lambda m: m.group(1) + "S", name)
    name = _LOWER_UPPER.sub(r"\1_\2", name)
    name = _ACRONYM_WORD.sub(r"\1_\2", name)
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower()
    if not name or name[0].isdigit():
        name = "f_" + name
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        name += "_"
    return name


def pascal_case(name: str) -> str:
    """``imagePullPolicy`` -> ``ImagePullPolicy``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9a-zA-Z]+", name))


def enum_member_name(value: str) -> str:
    """``ClusterFirstWithHostNet`` -> ``CLUSTER_FIRST_WITH_HOST_NET``; ``""`` -> ``EMPTY``."""
    if value == "":
        return "EMPTY"
    # snake_case already prefixes a leading digit, so the result is an identifier.
    return snake_case(value).rstrip("_").upper()


def module_for(definition: str) -> str:
    """The generated models module of an upstream definition name.

    ``io.k8s.api.core.v1.Pod`` -> ``core_v1``; ``io.k8s.apimachinery.pkg.apis.meta.v1.Time``
    -> ``meta_v1``. Scalars without a class (Quantity, IntOrString) still get a module name.
    """
    parts = definition.split(".")
    if definition.startswith("io.k8s.api."):
        return f"{parts[3]}_{parts[4]}".replace("-", "_")
    if definition.startswith("io.k8s.apimachinery.pkg.apis."):
        return f"{parts[5]}_{parts[6]}"
    return parts[-2]
