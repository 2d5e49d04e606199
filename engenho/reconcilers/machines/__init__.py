"""State machines the workload controllers run on: pure ``step(state, event) -> (state,
effects)`` functions that raise on a pair they do not accept. The controllers compute their
view of pods and of a rollout's progress by stepping these machines, nothing else."""

from engenho.reconcilers.machines.errors import InvalidTransitionError, MachineError

__all__ = ["InvalidTransitionError", "MachineError"]
