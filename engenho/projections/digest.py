"""The digest of the projected state: equal for equal log prefixes, however they were applied.

``BLAKE3(tag || u64 applied index || u32 len || applied hash || rows)`` where the rows are the
current versions in key order (by bytes), each as ``u32 len || key || u32 len || data ||
u32 len || claims`` (claims as the stored JSON array); integers big-endian. History (closed
versions) and the compaction floor are not included: a rebuild has no history, and must still
give the same digest.
"""

from __future__ import annotations

import struct

from blake3 import blake3
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from engenho.projections.reading import read_state
from engenho.projections.tables import OBJECT_VERSIONS as V

__all__ = ["DIGEST_TAG", "compute_digest"]

DIGEST_TAG = b"engenho/projections/digest/v2\x00"

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


async def compute_digest(connection: AsyncConnection) -> str:
    """The hex digest, read from one snapshot (``connection`` must be in a read transaction)."""
    state = await read_state(connection)
    hasher = blake3(DIGEST_TAG)
    hasher.update(_U64.pack(state.applied_index))
    hasher.update(_U32.pack(len(state.applied_hash)) + state.applied_hash)
    rows = await connection.stream(
        select(V.c.key, V.c.data, V.c.claims).where(V.c.valid_to.is_(None)).order_by(V.c.key)
    )
    async for partition in rows.partitions(2048):
        for key, data, claims in partition:
            encoded, held = key.encode(), claims.encode()
            hasher.update(
                _U32.pack(len(encoded))
                + encoded
                + _U32.pack(len(data))
                + data
                + _U32.pack(len(held))
                + held
            )
    digest: str = hasher.hexdigest()
    return digest
