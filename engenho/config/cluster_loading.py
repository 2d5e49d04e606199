"""Reading and writing ClusterConfig documents (kebab-case YAML or JSON, unknown keys refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engenho.config.cluster_schema import ClusterConfig
from engenho.config.converting import kebab_case, make_converter, structure_document
from engenho.config.errors import ConfigFileError
from engenho.config.yamlio import load_yaml

__all__ = ["cluster_config_document", "load_cluster_config", "parse_cluster_config"]

_CONVERTER = make_converter(kebab_case)


def parse_cluster_config(document: object) -> ClusterConfig:
    """A parsed YAML/JSON document as a ClusterConfig; InvalidConfigError lists every problem."""
    return structure_document(_CONVERTER, document, ClusterConfig, kebab_case)


def load_cluster_config(path: Path) -> ClusterConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: {exc.strerror or exc}") from exc
    return parse_cluster_config(load_yaml(text, str(path)))


def cluster_config_document(config: ClusterConfig) -> dict[str, Any]:
    """Every field, defaults included, as the kebab-case document that parses back to it."""
    document: dict[str, Any] = _CONVERTER.unstructure(config)
    return document
