"""Reconcilers: level-triggered controllers that consume the change feed and emit commands."""

from engenho.reconcilers.conditions import condition, set_condition
from engenho.reconcilers.controller import Controller, Requeue, Source
from engenho.reconcilers.cronjobs import CronJobController
from engenho.reconcilers.daemonsets import DaemonSetController
from engenho.reconcilers.deployments import DeploymentController
from engenho.reconcilers.endpoints import EndpointsController
from engenho.reconcilers.endpointslices import EndpointSliceController
from engenho.reconcilers.events import EventRecorder, Reference
from engenho.reconcilers.garbage import GarbageCollector
from engenho.reconcilers.informer import Informer, InformerFactory, object_key
from engenho.reconcilers.jobs import JobController
from engenho.reconcilers.manager import ControllerManager
from engenho.reconcilers.namespaces import NamespaceController
from engenho.reconcilers.nodeipam import NodeIpamController
from engenho.reconcilers.nodelifecycle import NodeLifecycleController
from engenho.reconcilers.queue import WorkQueue
from engenho.reconcilers.replicasets import ReplicaSetController
from engenho.reconcilers.serviceaccounts import ServiceAccountController
from engenho.reconcilers.serviceaccounttokens import ServiceAccountTokenController
from engenho.reconcilers.statefulsets import StatefulSetController
from engenho.reconcilers.ttlafterfinished import TTLAfterFinishedController

__all__ = [
    "Controller",
    "ControllerManager",
    "CronJobController",
    "DaemonSetController",
    "DeploymentController",
    "EndpointSliceController",
    "EndpointsController",
    "EventRecorder",
    "GarbageCollector",
    "Informer",
    "InformerFactory",
    "JobController",
    "NamespaceController",
    "NodeIpamController",
    "NodeLifecycleController",
    "Reference",
    "ReplicaSetController",
    "Requeue",
    "ServiceAccountController",
    "ServiceAccountTokenController",
    "Source",
    "StatefulSetController",
    "TTLAfterFinishedController",
    "WorkQueue",
    "condition",
    "object_key",
    "set_condition",
]
