"""Pods on a node agent with the fake runtime, end to end against a real engenho server:
Running and Ready with a pod IP from the node's pod CIDR, restart policies, the crash-loop
back-off, image pull failures, init containers, deletion with a grace period, the final
delete, and upstream's Events."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

from engenho.client import EventType, KubeClient, NotFoundError, WatchEvent
from engenho.node_agent.agent import NodeAgent
from engenho.node_agent.runtimes.fake import FakeRuntime

from .conftest import (
    StartAgent,
    agent_config_for,
    condition,
    container_state,
    events_of,
    eventually,
    pod_manifest,
)


async def _pod(client: KubeClient, namespace: str, name: str) -> dict:
    return await client.get("pods", name, namespace=namespace)


async def test_a_pod_runs_and_is_ready_with_an_address_from_the_pod_cidr(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    await client.create(pod_manifest("web", node.name), namespace=namespace)

    async def running() -> dict | None:
        pod = await _pod(client, namespace, "web")
        ready = condition(pod, "Ready")
        return pod if ready and ready["status"] == "True" else None

    pod = await eventually(running, what="the pod Ready")
    status = pod["status"]
    assert status["phase"] == "Running"
    cidr = (await client.get("nodes", node.name))["spec"]["podCIDR"]
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(cidr)
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] == node.agent.host_ips[0]
    assert status["qosClass"] == "BestEffort"
    assert status["startTime"]
    for kind in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "PodScheduled"):
        assert condition(pod, kind)["status"] == "True", kind
    app = container_state(pod)
    assert app["ready"] is True and app["started"] is True and app["restartCount"] == 0
    assert app["containerID"].startswith("fake://")
    assert "running" in app["state"]

    async def posted() -> list:
        events = await events_of(client, namespace, "web")
        reasons = {e["reason"] for e in events}
        return events if {"Pulling", "Pulled", "Created", "Started"} <= reasons else []

    events = await eventually(posted, what="the Pulled, Created and Started events")
    event = next(e for e in events if e["reason"] == "Started")
    assert event["message"] == "Started container app"
    assert event["source"] == {"component": "kubelet", "host": node.name}
    assert event["involvedObject"]["fieldPath"] == "spec.containers{app}"


async def _wait_phase(client: KubeClient, namespace: str, name: str, phase: str) -> dict:
    async def check() -> dict | None:
        pod = await _pod(client, namespace, name)
        return pod if (pod.get("status") or {}).get("phase") == phase else None

    result: dict = await eventually(check, what=f"{name} {phase}")
    return result


async def test_never_succeeds_and_fails_on_exit_codes(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    done = {"fake.engenho.io/run-for": "100ms"}
    failing = {"fake.engenho.io/run-for": "100ms", "fake.engenho.io/exit-code": "3"}
    await client.create(
        pod_manifest("ok", node.name, annotations=done, restartPolicy="Never"), namespace=namespace
    )
    await client.create(
        pod_manifest("bad", node.name, annotations=failing, restartPolicy="Never"),
        namespace=namespace,
    )
    ok = await _wait_phase(client, namespace, "ok", "Succeeded")
    terminated = container_state(ok)["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert condition(ok, "Ready")["reason"] == "PodCompleted"
    bad = await _wait_phase(client, namespace, "bad", "Failed")
    terminated = container_state(bad)["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert container_state(bad)["restartCount"] == 0


async def test_on_failure_restarts_until_success(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    failing = {"fake.engenho.io/run-for": "50ms", "fake.engenho.io/exit-code": "1"}
    await client.create(
        pod_manifest("retry", node.name, annotations=failing, restartPolicy="OnFailure"),
        namespace=namespace,
    )

    async def restarted() -> dict | None:
        pod = await _pod(client, namespace, "retry")
        return pod if container_state(pod).get("restartCount", 0) >= 2 else None

    pod = await eventually(restarted, what="two restarts")
    assert pod["status"]["phase"] in ("Running", "Pending")
    last = container_state(pod)["lastState"]["terminated"]
    assert last["exitCode"] == 1 and last["reason"] == "Error"
    # What the logs and exec endpoint asks of the agent.
    current = node.agent.locate(namespace, "retry", "app")
    previous = node.agent.locate(namespace, "retry", previous=True)
    assert current is not None and previous is not None
    assert current.container_id != previous.container_id and current.runtime == "fake"
    assert previous.log_path.parent.name == "app"
    assert previous.log_path.parent.parent.name == f"{namespace}_retry_{pod['metadata']['uid']}"
    assert node.agent.log_path(namespace, "retry", "app", previous=True) == previous.log_path
    assert node.agent.pod(namespace, "retry")["metadata"]["uid"] == pod["metadata"]["uid"]
    assert [p["metadata"]["name"] for p in node.agent.pods()] == ["retry"]
    assert node.agent.locate(namespace, "nope", "app") is None

    async def collected() -> bool:
        # The running instance and the one before it are kept (for --previous), not more.
        return len(await node.runtime.list_containers()) <= 2

    await eventually(collected, what="old instances removed")


async def test_crash_loop_back_off_is_visible(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    crashing = {"fake.engenho.io/run-for": "20ms", "fake.engenho.io/exit-code": "2"}
    await client.create(pod_manifest("crash", node.name, annotations=crashing), namespace=namespace)

    async def backing_off() -> dict | None:
        pod = await _pod(client, namespace, "crash")
        waiting = container_state(pod).get("state", {}).get("waiting") or {}
        return pod if waiting.get("reason") == "CrashLoopBackOff" else None

    pod = await eventually(backing_off, what="CrashLoopBackOff")
    waiting = container_state(pod)["state"]["waiting"]
    assert "restarting failed container=app pod=crash_" in waiting["message"]
    assert container_state(pod)["lastState"]["terminated"]["exitCode"] == 2
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready")["reason"] == "ContainersNotReady"

    async def back_off_event() -> list:
        return [e for e in await events_of(client, namespace, "crash") if e["reason"] == "BackOff"]

    (event, *_) = await eventually(back_off_event, what="a BackOff event")
    assert event["type"] == "Warning"
    assert event["message"].startswith("Back-off restarting failed container app in pod crash_")


async def test_a_missing_image_reports_err_image_pull_then_back_off(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    from .conftest import RecordingRuntime

    runtime = RecordingRuntime(has_image=lambda ref: "missing" not in str(ref))
    node = await start_agent(runtime=runtime)
    spec = [{"name": "app", "image": "missing:1.0"}]
    await client.create(pod_manifest("nope", node.name, containers=spec), namespace=namespace)

    async def waiting(reason: str) -> dict | None:
        pod = await _pod(client, namespace, "nope")
        state = container_state(pod).get("state", {}).get("waiting") or {}
        return pod if state.get("reason") == reason else None

    await eventually(lambda: waiting("ErrImagePull"), what="ErrImagePull")
    pod = await eventually(lambda: waiting("ImagePullBackOff"), what="ImagePullBackOff")
    assert pod["status"]["phase"] == "Pending"

    async def failed() -> set:
        messages = {e["message"] for e in await events_of(client, namespace, "nope")}
        pulled = any(m.startswith('Failed to pull image "missing:1.0": ') for m in messages)
        return messages if pulled and "Error: ErrImagePull" in messages else set()

    await eventually(failed, what="the pull failure events")


async def test_init_containers_run_first_in_order(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    short = {"fake.engenho.io/one.run-for": "50ms", "fake.engenho.io/two.run-for": "50ms"}
    init = [{"name": "one", "image": "busybox"}, {"name": "two", "image": "busybox"}]
    await client.create(
        pod_manifest("init", node.name, annotations=short, initContainers=init),
        namespace=namespace,
    )
    pod = await _wait_phase(client, namespace, "init", "Running")
    assert condition(pod, "Initialized")["status"] == "True"

    async def started() -> list:
        events = sorted(
            await events_of(client, namespace, "init"), key=lambda e: e["metadata"]["name"]
        )
        paths = [e["involvedObject"]["fieldPath"] for e in events if e["reason"] == "Started"]
        return paths if len(paths) == 3 else []

    paths = await eventually(started, what="three Started events")
    assert paths == ["spec.initContainers{one}", "spec.initContainers{two}", "spec.containers{app}"]
    for name in ("one", "two"):
        assert container_state(pod, name)["state"]["terminated"]["reason"] == "Completed"


async def test_deletion_stops_the_containers_then_removes_the_pod(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    stubborn = {"fake.engenho.io/ignore-stop-signal": "true"}
    await client.create(
        pod_manifest("slow", node.name, annotations=stubborn, terminationGracePeriodSeconds=1),
        namespace=namespace,
    )
    await _wait_phase(client, namespace, "slow", "Running")
    deleted = await client.delete("pods", "slow", namespace=namespace)
    assert deleted["metadata"]["deletionTimestamp"], "a running pod's delete is graceful"

    async def gone() -> bool:
        try:
            await _pod(client, namespace, "slow")
        except NotFoundError:
            return True
        return False

    await eventually(gone, what="the pod removed")

    async def killing() -> bool:
        events = await events_of(client, namespace, "slow")
        return ("Killing", "Stopping container app") in [
            (e["reason"], e["message"]) for e in events
        ]

    await eventually(killing, what="the Killing event")
    assert not await node.runtime.list_containers(), "the sandbox and its containers are gone"
    assert not node.agent.workers


async def test_a_node_without_a_pod_cidr_says_why_its_pods_wait(
    client: KubeClient, namespace: str, tmp_path: Path
) -> None:
    # The agent is fed by hand (as a simulated fleet feeds its nodes), so that it sees its
    # Node without a pod CIDR whatever the server's node-ipam controller does meanwhile.
    runtime = FakeRuntime()
    agent = NodeAgent(client, runtime, agent_config_for(f"no-cidr-{namespace[-6:]}", tmp_path))
    task = asyncio.create_task(agent.run(feeds=False))
    try:
        async with asyncio.timeout(20):
            await agent.accepting.wait()
        created = await client.create(pod_manifest("waits", agent.name), namespace=namespace)
        agent.on_pod_event(WatchEvent(EventType.ADDED, created, ""))
        agent.pods_synced()

        async def said() -> list:
            return [
                e
                for e in await events_of(client, namespace, "waits")
                if e["reason"] == "NetworkNotReady"
            ]

        (event, *_) = await eventually(said, what="a NetworkNotReady event")
        assert "has no spec.podCIDR yet" in event["message"]

        async def reported() -> dict | None:
            pod = await _pod(client, namespace, "waits")
            return pod if condition(pod, "PodReadyToStartContainers") else None

        pod = await eventually(reported, what="the waiting pod's status")
        assert pod["status"]["phase"] == "Pending"
        assert container_state(pod)["state"]["waiting"]["reason"] == "ContainerCreating"
        assert condition(pod, "PodReadyToStartContainers")["status"] == "False"
        node = await client.get("nodes", agent.name)
        agent.on_node({**node, "spec": {**node["spec"], "podCIDR": "10.77.0.0/24"}})
        pod = await _wait_phase(client, namespace, "waits", "Running")
        assert pod["status"]["podIP"] == "10.77.0.2"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_host_network_pods_get_the_node_address(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    node = await start_agent()
    await client.create(pod_manifest("host", node.name, hostNetwork=True), namespace=namespace)
    pod = await _wait_phase(client, namespace, "host", "Running")
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == node.agent.host_ips[0]


async def test_a_restarted_agent_adopts_running_containers(
    client: KubeClient, namespace: str, start_agent: StartAgent
) -> None:
    first = await start_agent()
    await client.create(pod_manifest("kept", first.name), namespace=namespace)
    pod = await _wait_phase(client, namespace, "kept", "Running")
    container_id = container_state(pod)["containerID"]
    address = pod["status"]["podIP"]
    await first.agent.recorder.drain()
    await first.stop()
    second = await start_agent(first.name, runtime=first.runtime)
    await second.agent.ready.wait()

    async def adopted() -> bool:
        worker = next(iter(second.agent.workers.values()), None)
        return worker is not None and worker.pod_ip == address

    await eventually(adopted, what="the pod adopted with its address")
    pod = await _pod(client, namespace, "kept")
    assert container_state(pod)["containerID"] == container_id
    assert container_state(pod)["restartCount"] == 0
    assert len(await first.runtime.list_containers()) == 1, "nothing started twice"
    await second.agent.recorder.drain()
    started = [e for e in await events_of(client, namespace, "kept") if e["reason"] == "Started"]
    assert len(started) == 1 and started[0].get("count", 1) == 1
