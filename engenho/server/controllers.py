"""Which reconcilers ``engenho server`` runs, built from the configuration.

Every controller the server knows is listed here under its configuration name
(``controllers.<name>`` in engenho.yaml); each runs unless disabled there, with the workers
and resync interval configured for it. A name in :data:`engenho.config.CONTROLLERS` that is
missing here is a controller not written yet, and `engenho server` says so at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from engenho.config import EngenhoConfig
from engenho.config import SchedulingStrategy as StrategyChoice
from engenho.reconcilers import (
    Controller,
    ControllerManager,
    CronJobController,
    DaemonSetController,
    DeploymentController,
    EndpointsController,
    EndpointSliceController,
    GarbageCollector,
    JobController,
    NamespaceController,
    NodeIpamController,
    NodeLifecycleController,
    ReplicaSetController,
    ServiceAccountController,
    ServiceAccountTokenController,
    StatefulSetController,
    TTLAfterFinishedController,
)
from engenho.reconcilers.scheduling import (
    Scheduler,
    SchedulerProfile,
    SchedulingStrategy,
    bin_packing,
)
from engenho.registry import Registry

__all__ = [
    "BUILDERS",
    "Builder",
    "install_controllers",
    "node_lifecycle_arguments",
    "scheduler_profiles",
]

_log = logging.getLogger("engenho.server")

Builder = Callable[..., Controller]
"""``builder(registry, informers, *, workers=, resync=) -> Controller``."""

BUILDERS: Mapping[str, Builder] = {
    "namespace-controller": NamespaceController,
    "garbage-collector": GarbageCollector,
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "node-ipam": NodeIpamController,
    "node-lifecycle": NodeLifecycleController,
    "statefulset": StatefulSetController,
    "daemonset": DaemonSetController,
    "job": JobController,
    "cronjob": CronJobController,
    "ttl-after-finished": TTLAfterFinishedController,
    "endpoints": EndpointsController,
    "endpointslice": EndpointSliceController,
    "serviceaccount": ServiceAccountController,
    "serviceaccount-token": ServiceAccountTokenController,
    "scheduler": Scheduler,
}


def scheduler_profiles(config: EngenhoConfig) -> list[SchedulerProfile]:
    """One profile per configured ``schedulerName``, all with the configured strategy."""
    bin_pack = config.scheduler.strategy is StrategyChoice.MOST_ALLOCATED
    strategy = bin_packing() if bin_pack else SchedulingStrategy()
    return [SchedulerProfile(name, strategy) for name in config.scheduler.profiles]


def node_lifecycle_arguments(config: EngenhoConfig) -> dict[str, float]:
    section = config.node_lifecycle
    return {
        "node_monitor_grace_period": section.node_monitor_grace_period_seconds,
        "node_startup_grace_period": section.node_startup_grace_period_seconds,
        "node_monitor_period": section.node_monitor_period_seconds,
        "node_eviction_rate": section.node_eviction_rate,
    }


def install_controllers(
    manager: ControllerManager,
    registry: Registry,
    config: EngenhoConfig,
    builders: Mapping[str, Builder] = BUILDERS,
    arguments: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Add every enabled controller to ``manager``; the names added, in order.

    ``arguments`` gives a controller what only the server knows (the CA for the root CA
    publisher, the network settings), by controller name."""
    arguments = arguments or {}
    added: list[str] = []
    for name, settings in sorted(config.controllers.items()):
        if not settings.enabled:
            _log.info("controller %s is disabled by configuration", name)
            continue
        builder = builders.get(name)
        if builder is None:
            _log.warning("controller %s is enabled but engenho does not have it yet", name)
            continue
        manager.add(
            builder(
                registry,
                manager.informers,
                workers=settings.workers,
                resync=settings.resync_interval_seconds or 0.0,
                **arguments.get(name, {}),
            )
        )
        added.append(name)
    return added
