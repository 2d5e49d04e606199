"""The catalogue of controllers the configuration knows, with their defaults.

The ``controllers`` section of an EngenhoConfig is a map from these names to their settings; a
name outside the catalogue is refused (a typo would otherwise switch nothing off). The set is
data, not schema: a new controller is one more ``ControllerSpec`` here, and a caller with its
own set (the server, from the controllers it really runs) passes it to ``resolve_config``.
Names are the controllers' own (``Controller.name`` in engenho.reconcilers).
"""

from __future__ import annotations

from attrs import frozen

__all__ = ["CONTROLLERS", "DEFAULT_RESYNC_INTERVAL_SECONDS", "ControllerSpec"]

DEFAULT_RESYNC_INTERVAL_SECONDS = 300.0
"""How often a controller re-queues every key it knows, besides reacting to changes: a safety
net for level-triggered loops, not their trigger."""


@frozen
class ControllerSpec:
    name: str
    workers: int
    """Default concurrency; where kube-controller-manager has a ``--concurrent-*-syncs`` flag,
    its default."""
    enabled: bool = True
    resync_interval_seconds: float | None = DEFAULT_RESYNC_INTERVAL_SECONDS


CONTROLLERS: tuple[ControllerSpec, ...] = (
    ControllerSpec("cronjob", workers=5),
    ControllerSpec("daemonset", workers=2),
    ControllerSpec("deployment", workers=5),
    ControllerSpec("endpoints", workers=5),
    ControllerSpec("endpointslice", workers=5),
    ControllerSpec("garbage-collector", workers=20),
    ControllerSpec("job", workers=5),
    ControllerSpec("namespace-controller", workers=10),
    ControllerSpec("node-ipam", workers=1),
    ControllerSpec("node-lifecycle", workers=1),
    ControllerSpec("replicaset", workers=5),
    # Decisions are made one at a time (each depends on the ones before it); workers are
    # bindings in flight, each waiting for its fsync.
    ControllerSpec("scheduler", workers=64),
    ControllerSpec("serviceaccount", workers=5),
    ControllerSpec("serviceaccount-token", workers=5),
    ControllerSpec("statefulset", workers=5),
    ControllerSpec("ttl-after-finished", workers=5),
)
