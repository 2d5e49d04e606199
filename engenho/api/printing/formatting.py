"""Small cell formats several printers share."""

from __future__ import annotations

from collections.abc import Sequence

from engenho.api.printing.fields import dig, integer, mapping, sequence, string

__all__ = [
    "LIST_MAX",
    "UNSET",
    "bool_pointer",
    "containers_and_images",
    "int_or_string",
    "join_host_port",
    "list_with_more",
]

LIST_MAX = 3
"""How many entries list cells show before `` + N more...``."""
UNSET = "<unset>"


def containers_and_images(pod_spec: object) -> tuple[str, str]:
    """The Containers and Images cells of a pod template: names and images, comma-joined."""
    containers = [mapping(c) for c in sequence(dig(pod_spec, "containers"))]
    names = ",".join(string(c.get("name")) for c in containers)
    images = ",".join(string(c.get("image")) for c in containers)
    return names, images


def list_with_more(shown: Sequence[str], total: int) -> str:
    """At most ``LIST_MAX`` entries, then how many were left out; ``<unset>`` when empty."""
    text = ",".join(shown)
    if total > LIST_MAX:
        return f"{text} + {total - LIST_MAX} more..."
    return text or UNSET


def join_host_port(host: str, port: int) -> str:
    # Go's net.JoinHostPort brackets any host with a colon (IPv6).
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bool_pointer(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return UNSET


def int_or_string(value: object) -> str:
    """An IntOrString field as Go's ``IntOrString.String()``."""
    if isinstance(value, str):
        return value
    return str(integer(value))
