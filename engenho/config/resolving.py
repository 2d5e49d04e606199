"""Resolving the runtime configuration: defaults < file < environment < flags, with the
source of every value.

``resolve_config`` is the one entry point; ``engenho server`` calls it with its flags and the
process environment, ``engenho config show`` prints what it returns.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import evolve, frozen

from engenho.config.controllers import CONTROLLERS, ControllerSpec
from engenho.config.converting import make_converter, snake_case, structure_document
from engenho.config.defaults import SYSTEM_CONFIG_FILE, default_data_dir, prescribed_defaults
from engenho.config.engenho_schema import EngenhoConfig
from engenho.config.environment import environment_layer
from engenho.config.errors import InvalidConfigError
from engenho.config.flags import flag_for
from engenho.config.layering import Layer, merge_layers, source_for
from engenho.config.locating import ConfigFile, locate_config_file, read_config_file
from engenho.config.problems import Problem
from engenho.config.tiers import Source, Tier

__all__ = ["ResolvedConfig", "config_document", "resolve_config", "validate_config_file"]

_CONVERTER = make_converter(snake_case)


def config_document(config: EngenhoConfig) -> dict[str, Any]:
    """The whole configuration as the snake_case document that parses back to it."""
    document: dict[str, Any] = _CONVERTER.unstructure(config)
    return document


@frozen
class ResolvedConfig:
    config: EngenhoConfig
    sources: Mapping[str, Source]
    """The source of every value, by dotted path (``networking.service_cidr``)."""
    file: ConfigFile | None
    through: Tier
    """The highest tier applied."""

    def source(self, path: str) -> Source:
        found = source_for(self.sources, path)
        if found is None:
            raise KeyError(path)
        return found

    def document(self) -> dict[str, Any]:
        """What ``engenho config show`` prints: the config, the file read, each value's source."""
        return {
            "config": config_document(self.config),
            "file": None if self.file is None else str(self.file.path),
            "through": self.through.value,
            "sources": {
                path: {"tier": source.tier.value, "origin": source.origin}
                for path, source in sorted(self.sources.items())
            },
        }


def resolve_config(
    *,
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    hostname: str | None = None,
    through: Tier = Tier.FLAG,
    controllers: Sequence[ControllerSpec] = CONTROLLERS,
    system_file: Path = SYSTEM_CONFIG_FILE,
) -> ResolvedConfig:
    """The effective configuration and the source of each value.

    ``flags`` maps dotted configuration paths to the values of the flags given (``config_flags``
    builds it from argparse); ``env`` defaults to ``os.environ``; ``config_file`` is
    ``--config``. Tiers above ``through`` are left out (``config show --tier``). Raises
    InvalidConfigError listing every problem, each with its path and source, or
    ConfigFileError when a file named explicitly cannot be read.
    """
    env = os.environ if env is None else env
    hostname = socket.gethostname() if hostname is None else hostname
    layers = [_default_layer(env, hostname, controllers)]
    problems: list[Problem] = []
    file = None
    if through.rank >= Tier.FILE.rank:
        file = locate_config_file(config_file, env, system_file)
        if file is not None:
            layers.append(_file_layer(file))
    if through.rank >= Tier.ENV.rank:
        layer, env_problems = environment_layer(env, controllers)
        layers.append(layer)
        problems += env_problems
    if through.rank >= Tier.FLAG.rank and flags:
        layers.append(_flag_layer(flags))
    merged, sources = merge_layers(layers)
    _derive_cluster_dns(merged, sources)
    problems += _unknown_controllers(merged, sources, controllers)
    try:
        config = structure_document(_CONVERTER, merged, EngenhoConfig, snake_case)
    except InvalidConfigError as exc:
        problems += exc.problems
    if problems:
        described = [
            p if p.source else evolve(p, source=_describe(source_for(sources, p.path)))
            for p in problems
        ]
        raise InvalidConfigError(sorted(described, key=lambda p: p.path))
    return ResolvedConfig(config, sources, file, through)


def validate_config_file(
    path: Path,
    *,
    env: Mapping[str, str] | None = None,
    hostname: str | None = None,
    controllers: Sequence[ControllerSpec] = CONTROLLERS,
) -> ResolvedConfig:
    """The file over the built-in defaults, without environment or flags."""
    return resolve_config(
        config_file=path, env=env, hostname=hostname, through=Tier.FILE, controllers=controllers
    )


def _describe(source: Source | None) -> str | None:
    return None if source is None else str(source)


def _default_layer(
    env: Mapping[str, str], hostname: str, controllers: Sequence[ControllerSpec]
) -> Layer:
    defaults = config_document(prescribed_defaults(env, hostname, controllers))
    xdg = "$XDG_DATA_HOME/engenho" if env.get("XDG_DATA_HOME") else "~/.local/share/engenho"
    origins = {
        "server.data_dir": f"built-in ({xdg}: {default_data_dir(env)})",
        "node_agent.node_name": f"built-in (host name {hostname!r})",
    }
    return Layer(Tier.DEFAULT, defaults, "built-in", origins)


def _file_layer(file: ConfigFile) -> Layer:
    document = read_config_file(file)
    source = Source(Tier.FILE, str(file.path))
    if not isinstance(document, Mapping):
        kind = type(document).__name__
        raise InvalidConfigError([Problem("", f"expected a mapping, got a {kind}", str(source))])
    return Layer(Tier.FILE, document, source.origin)


def _flag_layer(flags: Mapping[str, object]) -> Layer:
    values: dict[str, Any] = {}
    for path, value in flags.items():
        target = values
        *parents, last = path.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = _flag_value(value)
    return Layer(Tier.FLAG, values, "command line", {p: flag_for(p) for p in flags})


def _flag_value(value: object) -> object:
    # Flags arrive typed by argparse; the converter reads documents, where paths are text.
    return str(value) if isinstance(value, Path) else value


def _derive_cluster_dns(merged: dict[str, Any], sources: dict[str, Source]) -> None:
    """A service range set without a DNS address gets its tenth address (10.96.0.0/12 gives
    10.96.0.10), instead of keeping a default that is now outside it."""
    cidr_source = sources.get("networking.service_cidr")
    dns_source = sources.get("networking.cluster_dns")
    if cidr_source is None or dns_source is None:
        return
    if cidr_source.tier is Tier.DEFAULT or dns_source.tier is not Tier.DEFAULT:
        return
    networking = merged.get("networking")
    if not isinstance(networking, dict) or not isinstance(networking.get("service_cidr"), str):
        return
    try:
        cidr = ipaddress.ip_network(networking["service_cidr"], strict=True)
    except ValueError:
        return  # the converter reports it
    if cidr.num_addresses <= 10:
        return
    networking["cluster_dns"] = str(cidr.network_address + 10)
    sources["networking.cluster_dns"] = Source(
        Tier.DEFAULT, f"built-in (tenth address of networking.service_cidr, {cidr_source})"
    )


def _unknown_controllers(
    merged: dict[str, Any], sources: Mapping[str, Source], controllers: Sequence[ControllerSpec]
) -> list[Problem]:
    """Refuse, and drop before structuring, a controller the catalogue does not know."""
    section = merged.get("controllers")
    if not isinstance(section, dict):
        return []
    known = {spec.name for spec in controllers}
    problems = []
    for name in sorted(set(section) - known, key=str):
        path = f"controllers.{name}"
        problems.append(
            Problem(
                path,
                f"no controller {name!r} (known: {', '.join(sorted(known))})",
                _describe(source_for(sources, path)),
            )
        )
        del section[name]
    return problems
