"""The public surface of engenho.schema: exactly the documented names, each loadable, and
the generator importable without the generated package."""

from __future__ import annotations

import subprocess
import sys

import engenho.schema

EXPECTED = {
    "CATALOGUE",
    "CONVERTER",
    "KUBERNETES_VERSION",
    "AttestationError",
    "Catalogue",
    "Cause",
    "CauseReason",
    "CodegenError",
    "Definition",
    "DriftError",
    "FieldSchema",
    "GroupVersionKind",
    "Quantity",
    "QuantityError",
    "QuantityFormat",
    "ResourceType",
    "SchemaError",
    "SpecError",
    "Subresource",
    "TypeKind",
    "TypeSpec",
    "UnknownResourceError",
    "default",
    "definition",
    "definition_for",
    "field_schema",
    "format_invalid",
    "from_wire",
    "make_converter",
    "model_for",
    "openapi_v2_document",
    "openapi_v3_document",
    "openapi_v3_paths",
    "to_wire",
    "unknown_fields",
    "validate",
}


def test_surface() -> None:
    assert set(engenho.schema.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(engenho.schema, name) is not None
    assert sorted(dir(engenho.schema)) == sorted(EXPECTED)
    assert engenho.schema.KUBERNETES_VERSION == "v1.29.2"


def test_errors_form_one_tree() -> None:
    for name in (
        "AttestationError",
        "CodegenError",
        "DriftError",
        "QuantityError",
        "SpecError",
        "UnknownResourceError",
    ):
        assert issubclass(getattr(engenho.schema, name), engenho.schema.SchemaError)
    assert issubclass(engenho.schema.QuantityError, ValueError)
    assert issubclass(engenho.schema.UnknownResourceError, KeyError)


def test_the_generator_does_not_import_generated_code() -> None:
    # So `engenho codegen` can rebuild a deleted or broken generated package.
    code = (
        "import sys, engenho.schema.codegen, engenho.commands.codegen; "
        "bad = sorted(m for m in sys.modules if m.startswith('engenho.schema.generated')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
