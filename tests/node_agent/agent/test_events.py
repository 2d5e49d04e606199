"""Events the agent posts: a repeat of the same event is counted on the existing Event, as
client-go's correlator does, and one that has gone is posted again."""

from __future__ import annotations

import asyncio

from engenho.client import KubeClient
from engenho.node_agent.recording import EventRecorder, ObjectReference


async def test_repeats_are_counted_on_one_event(client: KubeClient, namespace: str) -> None:
    recorder = EventRecorder(client, workers=2)
    task = asyncio.create_task(recorder.run())
    try:
        pod = {
            "metadata": {"name": "web", "namespace": namespace, "uid": "u-1"},
            "spec": {"initContainers": [{"name": "init"}]},
        }
        ref = ObjectReference.of_pod(pod, "init")
        assert ref.field_path == "spec.initContainers{init}"
        for _ in range(3):
            recorder.record(ref, "node-a", "Warning", "Unhealthy", "Readiness probe failed: x")
        recorder.record(ref, "node-a", "Warning", "Unhealthy", "Readiness probe failed: y")
        await recorder.drain()
        events = [e async for e in client.list("events", namespace=namespace)]
        counts = sorted((e["message"], e["count"]) for e in events)
        assert counts == [("Readiness probe failed: x", 3), ("Readiness probe failed: y", 1)]
        event = next(e for e in events if e["count"] == 3)
        assert event["involvedObject"] == {
            "kind": "Pod",
            "name": "web",
            "namespace": namespace,
            "uid": "u-1",
            "apiVersion": "v1",
            "fieldPath": "spec.initContainers{init}",
        }
        assert event["source"] == {"component": "kubelet", "host": "node-a"}
        assert event["reportingComponent"] == "kubelet" and event["reportingInstance"] == "node-a"
        assert event["metadata"]["name"].startswith("web.")
        await client.delete("events", event["metadata"]["name"], namespace=namespace)
        recorder.record(ref, "node-a", "Warning", "Unhealthy", "Readiness probe failed: x")
        await recorder.drain()
        again = [
            e
            async for e in client.list("events", namespace=namespace)
            if e["message"].endswith(": x")
        ]
        assert [e["count"] for e in again] == [1], "a gone event is posted anew"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
