"""Resource types and schema metadata generated from the upstream OpenAPI v3 documents."""

__all__: list[str] = []
