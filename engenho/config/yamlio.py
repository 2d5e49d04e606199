"""YAML and JSON in and out: typed data in, stable bytes out.

Output keeps keys sorted, block style, and writes multi-line strings (a HelmChart's
``valuesContent``) as literal blocks, so the same data always gives the same bytes. Input
refuses a key repeated in one mapping, which PyYAML would otherwise settle silently by keeping
the last.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from engenho.config.errors import ConfigFileError

__all__ = ["dump_json", "dump_yaml", "dump_yaml_documents", "load_yaml"]


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as ``|`` blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated within one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} repeated (line {mark.line + 1})", mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, origin: str) -> object:
    """One YAML document; ``origin`` (a path) names it in errors."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{origin}: not valid YAML: {exc}") from exc


def dump_yaml(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return text


def dump_yaml_documents(documents: Iterable[Any]) -> str:
    """Several documents, each opened by ``---``, as Kubernetes manifests are written."""
    text: str = yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
        explicit_start=True,
    )
    return text


def dump_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
