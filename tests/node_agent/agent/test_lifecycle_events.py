"""A fix to the pod machine found while wiring it to the agent: a failed pull is recorded
as upstream's startContainer records it (``Error: ErrImagePull``), the image manager's
``Failed to pull image ...`` being the agent's own event."""

from __future__ import annotations

from datetime import UTC, datetime

from engenho.node_agent.lifecycle import Emit, PullFailed, Tick, new_pod, step

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_failed_pull_is_recorded_with_its_reason() -> None:
    record = new_pod("p_ns(u)", {"containers": [{"name": "app", "image": "nope"}]})
    record, _ = step(record, Tick(T0))
    _, effects = step(record, PullFailed("app", T0, "ErrImagePull", 'image "nope" not found'))
    emits = [e for e in effects if isinstance(e, Emit)]
    assert emits == [Emit("Warning", "Failed", "Error: ErrImagePull", "app")]
