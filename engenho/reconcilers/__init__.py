"""Reconcilers: level-triggered controllers that consume the change feed and emit commands."""

from engenho.reconcilers.controller import Controller, Requeue, Source
from engenho.reconcilers.garbage import GarbageCollector
from engenho.reconcilers.manager import ControllerManager
from engenho.reconcilers.namespaces import NamespaceController
from engenho.reconcilers.queue import WorkQueue

__all__ = [
    "Controller",
    "ControllerManager",
    "GarbageCollector",
    "NamespaceController",
    "Requeue",
    "Source",
    "WorkQueue",
]
