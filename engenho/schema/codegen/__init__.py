"""The generator: upstream OpenAPI v3 documents in, typed models and schema metadata out.

``engenho codegen --specs DIR`` drives :func:`generate`, :func:`write_output` and
:func:`check_output`; see ``docs/schema.md`` for the pipeline and the determinism gate.
"""

from engenho.schema.codegen.attestation import Source, load_manifest, read_verified
from engenho.schema.codegen.generator import (
    DEFAULT_OUTPUT,
    DEFAULT_SOURCES,
    check_output,
    generate,
    write_output,
)

__all__ = [
    "DEFAULT_OUTPUT",
    "DEFAULT_SOURCES",
    "Source",
    "check_output",
    "generate",
    "load_manifest",
    "read_verified",
    "write_output",
]
