"""Profiles from KubeSchedulerConfiguration-shaped mappings: the defaults, upstream's merge of
enabled and disabled plugins, plugin arguments, and clear errors for what is not understood."""

from __future__ import annotations

from typing import Any

import pytest

from engenho.reconcilers.scheduling import (
    BalancedAllocation,
    ConfigurationError,
    LeastAllocated,
    MostAllocated,
    SchedulingStrategy,
    default_scores,
    profiles_from_config,
)


def score_names(config: dict[str, Any]) -> list[tuple[str, int]]:
    (profile,) = profiles_from_config(config)
    return [(type(plugin).__name__, weight) for plugin, weight in profile.strategy.scores]


def test_no_configuration_is_the_default_profile() -> None:
    (profile,) = profiles_from_config(None)
    assert profile.scheduler_name == "default-scheduler"
    assert profile.strategy == SchedulingStrategy()
    assert profile.strategy.scores == default_scores()


def test_bin_packing_by_scoring_strategy() -> None:
    config = {
        "profiles": [
            {
                "schedulerName": "packer",
                "pluginConfig": [
                    {
                        "name": "NodeResourcesFit",
                        "args": {
                            "scoringStrategy": {
                                "type": "MostAllocated",
                                "resources": [{"name": "cpu", "weight": 2}],
                            }
                        },
                    }
                ],
            }
        ]
    }
    (profile,) = profiles_from_config(config)
    assert profile.scheduler_name == "packer"
    assert (MostAllocated((("cpu", 2),)), 1) in profile.strategy.scores


def test_enabled_plugins_replace_defaults_in_place_and_others_append() -> None:
    config = {
        "profiles": [
            {
                "plugins": {
                    "score": {
                        "disabled": [{"name": "TaintToleration"}],
                        "enabled": [{"name": "NodeResourcesFit", "weight": 5}],
                    }
                }
            }
        ]
    }
    assert score_names(config) == [
        ("NodeAffinityScore", 2),
        ("LeastAllocated", 5),
        ("PodTopologySpreadScore", 2),
        ("BalancedAllocation", 1),
    ]


def test_star_disables_every_default() -> None:
    config = {
        "profiles": [
            {
                "plugins": {
                    "score": {
                        "disabled": [{"name": "*"}],
                        "enabled": [{"name": "NodeResourcesBalancedAllocation"}],
                    },
                    "filter": {"disabled": [{"name": "NodePorts"}]},
                },
                "pluginConfig": [
                    {
                        "name": "NodeResourcesBalancedAllocation",
                        "args": {"resources": [{"name": "cpu", "weight": 1}]},
                    }
                ],
            }
        ]
    }
    (profile,) = profiles_from_config(config)
    assert profile.strategy.scores == ((BalancedAllocation((("cpu", 1),)), 1),)
    assert "NodePorts" not in [f.name for f in profile.strategy.filters]


def test_several_profiles_and_the_node_sample() -> None:
    config = {
        "percentageOfNodesToScore": 30,
        "profiles": [
            {"schedulerName": "default-scheduler"},
            {"schedulerName": "all-nodes", "percentageOfNodesToScore": 100},
        ],
    }
    first, second = profiles_from_config(config)
    assert first.strategy.percentage_of_nodes_to_score == 30
    assert second.strategy.percentage_of_nodes_to_score == 100
    assert (LeastAllocated(), 1) in second.strategy.scores


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"profiles": [{"plugins": {"filter": {"enabled": [{"name": "Nope"}]}}}]}, "Nope"),
        ({"profiles": [{"plugins": {"score": {"enabled": [{"name": "Nope"}]}}}]}, "Nope"),
        (
            {
                "profiles": [
                    {
                        "pluginConfig": [
                            {
                                "name": "NodeResourcesFit",
                                "args": {"scoringStrategy": {"type": "RequestedToCapacityRatio"}},
                            }
                        ]
                    }
                ]
            },
            "RequestedToCapacityRatio",
        ),
        ({"profiles": [{}, {}]}, "appears twice"),
        ({"profiles": [{"percentageOfNodesToScore": 101}]}, "percentageOfNodesToScore"),
        ({"profiles": "default"}, "profiles"),
    ],
)
def test_what_is_not_understood_is_refused(config: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        profiles_from_config(config)
