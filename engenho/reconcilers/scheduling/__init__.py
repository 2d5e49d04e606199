"""The scheduler: pending pods to nodes, through pluggable filters and scores.

- :class:`Scheduler` is the controller (informers in, ``pods/binding``, ``PodScheduled``
  conditions and events out); :class:`SchedulerProfile` picks a :class:`SchedulingStrategy`
  by ``spec.schedulerName``; :func:`profiles_from_config` reads profiles from a
  ``KubeSchedulerConfiguration``-shaped mapping.
- :func:`decide` is the pure decision core over a :class:`Snapshot` of :class:`NodeInfo`
  (nodes with their bound pods): a :class:`Scheduled` node or :class:`Unschedulable` with
  every node's reasons and upstream's message. The controller and the benchmark both use it.
"""

from engenho.reconcilers.scheduling.cache import SchedulerCache
from engenho.reconcilers.scheduling.config import (
    FILTER_PLUGINS,
    SCORE_PLUGINS,
    profiles_from_config,
)
from engenho.reconcilers.scheduling.controller import RetryPolicy, Scheduler, SchedulerStats
from engenho.reconcilers.scheduling.decisions import (
    NO_NODES_MESSAGE,
    Decision,
    Scheduled,
    Unschedulable,
    decide,
    failure_message,
    nodes_to_find,
)
from engenho.reconcilers.scheduling.errors import ConfigurationError, SchedulingError
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
from engenho.reconcilers.scheduling.nodeinfo import NodeInfo, Snapshot
from engenho.reconcilers.scheduling.plugins import Cycle, FilterPlugin, NodeCheck, ScorePlugin
from engenho.reconcilers.scheduling.podinfo import DEFAULT_SCHEDULER, PodInfo, pod_info
from engenho.reconcilers.scheduling.readiness import NodeReadiness
from engenho.reconcilers.scheduling.scores import (
    BalancedAllocation,
    LeastAllocated,
    MostAllocated,
    NodeAffinityScore,
    TaintTolerationScore,
)
from engenho.reconcilers.scheduling.spreading import PodTopologySpread, PodTopologySpreadScore
from engenho.reconcilers.scheduling.strategy import (
    Binder,
    DefaultBinder,
    SchedulerProfile,
    SchedulingStrategy,
    bin_packing,
    default_filters,
    default_scores,
)

__all__ = [
    "DEFAULT_SCHEDULER",
    "FILTER_PLUGINS",
    "NO_NODES_MESSAGE",
    "SCORE_PLUGINS",
    "BalancedAllocation",
    "Binder",
    "ConfigurationError",
    "Cycle",
    "Decision",
    "DefaultBinder",
    "FilterPlugin",
    "InterPodAffinity",
    "LeastAllocated",
    "MostAllocated",
    "NodeAffinity",
    "NodeAffinityScore",
    "NodeCheck",
    "NodeInfo",
    "NodeName",
    "NodePorts",
    "NodeReadiness",
    "NodeReady",
    "NodeResourcesFit",
    "NodeUnschedulable",
    "PodInfo",
    "PodTopologySpread",
    "PodTopologySpreadScore",
    "RetryPolicy",
    "Scheduled",
    "Scheduler",
    "SchedulerCache",
    "SchedulerProfile",
    "SchedulerStats",
    "SchedulingError",
    "SchedulingStrategy",
    "ScorePlugin",
    "Snapshot",
    "TaintToleration",
    "TaintTolerationScore",
    "Unschedulable",
    "bin_packing",
    "decide",
    "default_filters",
    "default_scores",
    "failure_message",
    "nodes_to_find",
    "pod_info",
    "profiles_from_config",
]
