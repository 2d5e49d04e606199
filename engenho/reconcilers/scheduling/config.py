"""Scheduler profiles from configuration shaped like upstream's ``KubeSchedulerConfiguration``
(``kubescheduler.config.k8s.io/v1``), the subset this scheduler honours::

    percentageOfNodesToScore: 0          # global; 0 or absent is adaptive
    profiles:
    - schedulerName: bin-packer
      percentageOfNodesToScore: 50       # per profile, overrides the global one
      plugins:
        filter: {disabled: [{name: NodePorts}]}
        score:
          disabled: [{name: "*"}]        # "*" drops every default of this extension point
          enabled: [{name: NodeResourcesFit, weight: 5}]
      pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: MostAllocated          # LeastAllocated (default) | MostAllocated
            resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
      - name: NodeResourcesBalancedAllocation
        args: {resources: [{name: cpu, weight: 1}]}

Plugins merge as upstream merges them: the defaults minus the disabled ones; an enabled plugin
that is a default replaces it in place (with its weight; 0 or absent means 1), any other is
appended. ``multiPoint`` and the other extension points are not read. Anything not understood
raises :class:`.ConfigurationError` naming the field, rather than being silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attrs import evolve

from engenho.reconcilers.scheduling.errors import ConfigurationError
from engenho.reconcilers.scheduling.filters import (
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeReady,
    NodeResourcesFit,
    NodeUnschedulable,
    TaintToleration,
)
from engenho.reconcilers.scheduling.interpod import InterPodAffinity
from engenho.reconcilers.scheduling.plugins import FilterPlugin, ScorePlugin
from engenho.reconcilers.scheduling.podinfo import DEFAULT_SCHEDULER
from engenho.reconcilers.scheduling.scores import (
    DEFAULT_RESOURCES,
    BalancedAllocation,
    LeastAllocated,
    MostAllocated,
    NodeAffinityScore,
    TaintTolerationScore,
)
from engenho.reconcilers.scheduling.spreading import PodTopologySpread, PodTopologySpreadScore
from engenho.reconcilers.scheduling.strategy import (
    SchedulerProfile,
    SchedulingStrategy,
    default_filters,
    default_scores,
)

__all__ = ["FILTER_PLUGINS", "SCORE_PLUGINS", "profiles_from_config"]

_Args = Mapping[str, Any]
FILTER_PLUGINS: Mapping[str, Callable[[], FilterPlugin]] = {
    "NodeUnschedulable": NodeUnschedulable,
    "NodeName": NodeName,
    "NodeReady": NodeReady,
    "TaintToleration": TaintToleration,
    "NodeAffinity": NodeAffinity,
    "NodePorts": NodePorts,
    "NodeResourcesFit": NodeResourcesFit,
    "PodTopologySpread": PodTopologySpread,
    "InterPodAffinity": InterPodAffinity,
}


def _resources(value: Any, where: str) -> tuple[tuple[str, int], ...]:
    if value is None:
        return DEFAULT_RESOURCES
    if not isinstance(value, list) or not value:
        raise ConfigurationError(f"{where}: must be a non-empty list of {{name, weight}}")
    resources = []
    for i, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        weight = item.get("weight", 1) if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or not isinstance(weight, int) or weight < 1:
            raise ConfigurationError(f"{where}[{i}]: needs a name and a positive weight")
        resources.append((name, weight))
    return tuple(resources)


def _fit_score(args: _Args, where: str) -> ScorePlugin:
    strategy = args.get("scoringStrategy") or {}
    if not isinstance(strategy, dict):
        raise ConfigurationError(f"{where}.scoringStrategy: must be an object")
    kind = strategy.get("type", "LeastAllocated")
    resources = _resources(strategy.get("resources"), f"{where}.scoringStrategy.resources")
    if kind == "LeastAllocated":
        return LeastAllocated(resources)
    if kind == "MostAllocated":
        return MostAllocated(resources)
    raise ConfigurationError(
        f"{where}.scoringStrategy.type: {kind!r} is not supported (LeastAllocated, MostAllocated)"
    )


SCORE_PLUGINS: Mapping[str, Callable[[_Args, str], ScorePlugin]] = {
    "NodeResourcesFit": _fit_score,
    "NodeResourcesBalancedAllocation": lambda args, where: BalancedAllocation(
        _resources(args.get("resources"), f"{where}.resources")
    ),
    "NodeAffinity": lambda _args, _where: NodeAffinityScore(),
    "PodTopologySpread": lambda _args, _where: PodTopologySpreadScore(),
    "TaintToleration": lambda _args, _where: TaintTolerationScore(),
}


def _names(value: Any, where: str) -> list[tuple[str, int]]:
    """(name, weight) of a ``[{name, weight}]`` list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigurationError(f"{where}: must be a list")
    found = []
    for i, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        weight = (item.get("weight") or 1) if isinstance(item, dict) else 1
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{where}[{i}].name: required")
        if not isinstance(weight, int) or weight < 0:
            raise ConfigurationError(f"{where}[{i}].weight: must be a non-negative integer")
        found.append((name, weight))
    return found


def _point(plugins: Any, point: str, where: str) -> tuple[set[str], list[tuple[str, int]]]:
    section = (plugins or {}).get(point) if isinstance(plugins, dict) else None
    if section is None:
        return set(), []
    if not isinstance(section, dict):
        raise ConfigurationError(f"{where}.{point}: must be an object")
    disabled = {name for name, _ in _names(section.get("disabled"), f"{where}.{point}.disabled")}
    return disabled, _names(section.get("enabled"), f"{where}.{point}.enabled")


def _merge(
    defaults: list[tuple[str, int]], disabled: set[str], enabled: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    chosen = dict(enabled)
    merged = [
        (name, chosen.get(name, weight))
        for name, weight in ([] if "*" in disabled else defaults)
        if name not in disabled
    ]
    present = {name for name, _ in merged}
    merged.extend((name, weight) for name, weight in enabled if name not in present)
    return merged


def _profile(item: Any, index: int, percentage: Any) -> SchedulerProfile:
    where = f"profiles[{index}]"
    if not isinstance(item, dict):
        raise ConfigurationError(f"{where}: must be an object")
    scheduler_name = item.get("schedulerName", DEFAULT_SCHEDULER)
    if not isinstance(scheduler_name, str) or not scheduler_name:
        raise ConfigurationError(f"{where}.schedulerName: must be a non-empty string")
    percentage = item.get("percentageOfNodesToScore", percentage)
    if percentage is not None and (not isinstance(percentage, int) or not 0 <= percentage <= 100):
        raise ConfigurationError(f"{where}.percentageOfNodesToScore: must be 0 to 100")
    args: dict[str, _Args] = {}
    for i, entry in enumerate(item.get("pluginConfig") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigurationError(f"{where}.pluginConfig[{i}]: needs a name")
        if not isinstance(entry.get("args") or {}, dict):
            raise ConfigurationError(f"{where}.pluginConfig[{i}].args: must be an object")
        args[entry["name"]] = entry.get("args") or {}
    plugins = item.get("plugins")
    filter_disabled, filter_enabled = _point(plugins, "filter", f"{where}.plugins")
    score_disabled, score_enabled = _point(plugins, "score", f"{where}.plugins")
    default_filter_names = [(plugin.name, 0) for plugin in default_filters()]
    default_score_names = [(plugin.name, weight) for plugin, weight in default_scores()]
    filters = []
    for name, _ in _merge(default_filter_names, filter_disabled, filter_enabled):
        if name not in FILTER_PLUGINS:
            raise ConfigurationError(f"{where}.plugins.filter: unknown plugin {name!r}")
        filters.append(FILTER_PLUGINS[name]())
    scores = []
    for name, weight in _merge(default_score_names, score_disabled, score_enabled):
        if name not in SCORE_PLUGINS:
            raise ConfigurationError(f"{where}.plugins.score: unknown plugin {name!r}")
        plugin = SCORE_PLUGINS[name](args.get(name, {}), f"{where}.pluginConfig[{name}].args")
        scores.append((plugin, weight))
    strategy = evolve(
        SchedulingStrategy(),
        filters=tuple(filters),
        scores=tuple(scores),
        percentage_of_nodes_to_score=percentage or None,
    )
    return SchedulerProfile(scheduler_name, strategy)


def profiles_from_config(config: Mapping[str, Any] | None) -> tuple[SchedulerProfile, ...]:
    """The profiles a configuration describes (one default profile when it names none)."""
    config = config or {}
    percentage = config.get("percentageOfNodesToScore")
    items = config.get("profiles") or [{}]
    if not isinstance(items, list):
        raise ConfigurationError("profiles: must be a list")
    profiles = tuple(_profile(item, i, percentage) for i, item in enumerate(items))
    names = [p.scheduler_name for p in profiles]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigurationError(f"profiles: schedulerName {duplicated[0]!r} appears twice")
    return profiles
