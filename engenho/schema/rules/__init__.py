"""Semantic validation rules per kind: what upstream's hand-written validators check.

Structural checks (types, enums, required fields) come from the schema; these add the rules
a schema cannot express. ``RULES`` maps (group, kind) to ``rule(obj, old, causes)``;
``NAME_CHECKS`` gives each kind's ``metadata.name`` syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engenho.schema.causes import Cause
from engenho.schema.rules import batch, cluster, config, pods, rbac, services, workloads
from engenho.schema.rules.names import (
    NameCheck,
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    path_segment_errors,
)

__all__ = ["NAME_CHECKS", "RULES", "Rule", "name_check"]

Rule = Callable[[Mapping[str, Any], Mapping[str, Any] | None, list[Cause]], None]

RULES: dict[tuple[str, str], Rule] = {
    ("", "ConfigMap"): config.validate_config_map,
    ("", "Endpoints"): cluster.validate_endpoints,
    ("", "PersistentVolumeClaim"): cluster.validate_persistent_volume_claim,
    ("", "Pod"): pods.validate_pod,
    ("", "ReplicationController"): workloads.validate_replication_controller,
    ("", "Secret"): config.validate_secret,
    ("", "Service"): services.validate_service,
    ("apps", "DaemonSet"): workloads.validate_daemon_set,
    ("apps", "Deployment"): workloads.validate_deployment,
    ("apps", "ReplicaSet"): workloads.validate_replica_set,
    ("apps", "StatefulSet"): workloads.validate_stateful_set,
    ("batch", "CronJob"): batch.validate_cron_job,
    ("batch", "Job"): batch.validate_job,
    ("coordination.k8s.io", "Lease"): cluster.validate_lease,
    ("discovery.k8s.io", "EndpointSlice"): cluster.validate_endpoint_slice,
    ("policy", "PodDisruptionBudget"): cluster.validate_pod_disruption_budget,
    ("rbac.authorization.k8s.io", "ClusterRole"): rbac.validate_cluster_role,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): rbac.validate_role_binding,
    ("rbac.authorization.k8s.io", "Role"): rbac.validate_role,
    ("rbac.authorization.k8s.io", "RoleBinding"): rbac.validate_role_binding,
}

NAME_CHECKS: dict[tuple[str, str], NameCheck] = {
    ("", "Namespace"): dns1123_label_errors,
    ("", "Service"): dns1035_label_errors,
    ("rbac.authorization.k8s.io", "ClusterRole"): path_segment_errors,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): path_segment_errors,
    ("rbac.authorization.k8s.io", "Role"): path_segment_errors,
    ("rbac.authorization.k8s.io", "RoleBinding"): path_segment_errors,
}


def name_check(group: str, kind: str) -> NameCheck:
    """The ``metadata.name`` syntax of a kind; DNS-1123 subdomain unless upstream says else."""
    return NAME_CHECKS.get((group, kind), dns1123_subdomain_errors)
