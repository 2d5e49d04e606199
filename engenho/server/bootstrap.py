"""Objects every cluster has from its first start (contract §5): the four system namespaces.

They are written through the registry like any other object, as ``system:apiserver``, and only
when missing, so a restart appends nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from engenho.log import Actor
from engenho.registry import AlreadyExistsError, Registry, RequestContext
from engenho.schema import CATALOGUE

__all__ = ["SYSTEM_ACTOR", "SYSTEM_NAMESPACES", "bootstrap"]

SYSTEM_ACTOR = Actor("system:apiserver", ("system:masters",))
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def bootstrap(registry: Registry) -> int:
    """Create what is missing; return how many objects were created."""
    namespaces = CATALOGUE.get("", "v1", "namespaces")
    created = 0
    for name in SYSTEM_NAMESPACES:
        if await registry.projections.get("", "namespaces", "", name) is not None:
            continue
        ctx = RequestContext(
            actor=SYSTEM_ACTOR, request_id=f"bootstrap-{uuid.uuid4()}", now=datetime.now(UTC)
        )
        try:
            await registry.create(
                ctx,
                namespaces,
                "",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
            created += 1
        except AlreadyExistsError:
            continue
    return created
