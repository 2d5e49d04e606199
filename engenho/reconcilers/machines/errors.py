"""Errors of the controllers' state machines.

::

    MachineError                 base class
    └── InvalidTransitionError   a state was given an event it does not accept
"""

from __future__ import annotations

__all__ = ["InvalidTransitionError", "MachineError"]


class MachineError(Exception):
    """Base class of the state machines' errors."""


class InvalidTransitionError(MachineError):
    """Raised by a machine's ``step`` when its state does not accept the event: the caller
    fed it evidence in an order the lifecycle does not allow (a bug in the caller)."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: {state} does not accept {event}")
        self.machine = machine
        self.state = state
        self.event = event
