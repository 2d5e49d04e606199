"""The agent endpoint on its own (real uvicorn, real TLS, in-process): authentication,
/healthz and /pods, /containerLogs with the kubelet's options and refusals, and /exec over
WebSocket in each channel protocol (commands run as real host processes)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from engenho.node_agent import channels
from engenho.node_agent.logs import STDERR, STDOUT, CriLogWriter

from .conftest import TOKEN, Agent


def pod(name: str, *containers: str, line: str = "hello", **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "annotations": {"fake.engenho.io/log-line": line, **annotations},
        },
        "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers or ("app",)]},
    }


async def get(
    agent: Agent, path: str, *, token: str | None = None, certificate: bool = True
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(
        verify=agent.client_context(certificate=certificate), trust_env=False
    ) as client:
        return await client.get(agent.url + path, headers=headers)


# -- authentication, health, pods ----------------------------------------------------------


async def test_anonymous_callers_reach_only_healthz(agent: Agent) -> None:
    assert (await get(agent, "/healthz", certificate=False)).text == "ok"
    refused = await get(agent, "/pods", certificate=False)
    assert (refused.status_code, refused.text) == (401, "Unauthorized")
    assert (await get(agent, "/pods", certificate=False, token="wrong")).status_code == 401
    assert (await get(agent, "/pods", certificate=False, token=TOKEN)).status_code == 200


async def test_pods_lists_what_the_agent_runs(agent: Agent) -> None:
    await agent.runner.add(pod("web"))
    body = (await get(agent, "/pods")).json()
    assert body["kind"] == "PodList"
    assert [p["metadata"]["name"] for p in body["items"]] == ["web"]
    assert body["items"][0]["status"]["containerStatuses"][0]["state"]["running"]


# -- logs ------------------------------------------------------------------------------------


async def test_logs_of_a_running_container(agent: Agent) -> None:
    await agent.runner.add(pod("web", line="hello from web"))
    answer = await get(agent, "/containerLogs/default/web/app")
    assert answer.status_code == 200
    assert answer.text == "hello from web\n"
    assert answer.headers["content-type"].startswith("text/plain")
    stamped = (await get(agent, "/containerLogs/default/web/app?timestamps=true")).text
    stamp, _, text = stamped.partition(" ")
    assert text == "hello from web\n"
    assert stamp.endswith("Z") and stamp[:4].isdigit()


async def test_tail_since_limit_and_stream(agent: Agent) -> None:
    await agent.runner.add(pod("web", line="one"))
    path = agent.runner.current("default", "web", "app").log_path
    writer = CriLogWriter(path)
    for line in ("two", "three"):
        writer.write_line(STDOUT, line)
    writer.write_line(STDERR, "oops")
    writer.close()
    logs = "/containerLogs/default/web/app"
    assert (await get(agent, logs)).text == "one\ntwo\nthree\noops\n"
    assert (await get(agent, logs + "?tailLines=2")).text == "three\noops\n"
    assert (await get(agent, logs + "?tail=all")).text == "one\ntwo\nthree\noops\n"
    assert (await get(agent, logs + "?tailLines=0")).text == ""
    assert (await get(agent, logs + "?limitBytes=6")).text == "one\ntw"
    assert (await get(agent, logs + "?stream=Stderr")).text == "oops\n"
    assert (await get(agent, logs + "?sinceSeconds=3600")).text.startswith("one\n")
    assert (await get(agent, logs + "?sinceTime=2999-01-01T00:00:00Z")).text == ""


async def test_log_refusals_in_the_kubelets_words(agent: Agent) -> None:
    await agent.runner.add(pod("web"))
    await agent.runner.add(pod("slow"), start=False)
    cases = {
        "/containerLogs/default/nope/app": (404, 'pod "nope" does not exist'),
        "/containerLogs/default/web/other": (404, 'container "other" not found in pod "web"'),
        "/containerLogs/default/web/app?previous=true": (
            400,
            'previous terminated container "app" in pod "web" not found',
        ),
        "/containerLogs/default/slow/app": (
            400,
            'container "app" in pod "slow" is waiting to start: ContainerCreating',
        ),
        "/containerLogs/default/web/app?tailLines=-1": (422, '{"message": "Invalid request."}'),
        "/containerLogs/default/web/app?tailLines=x": (
            400,
            '{"message": "Unable to decode query."}',
        ),
        "/containerLogs/default/web/app?sinceSeconds=1&sinceTime=2020-01-01T00:00:00Z": (
            422,
            '{"message": "Invalid request."}',
        ),
    }
    for path, expected in cases.items():
        answer = await get(agent, path)
        assert (answer.status_code, answer.text) == expected, path


async def test_previous_reads_the_instance_before_a_restart(agent: Agent) -> None:
    await agent.runner.add(pod("web", line="first life"))
    path = agent.runner.current("default", "web", "app").log_path
    await agent.runner.restart("default", "web", "app")
    assert agent.runner.current("default", "web", "app").log_path != path
    assert (await get(agent, "/containerLogs/default/web/app")).text == "first life\n"
    previous = await get(agent, "/containerLogs/default/web/app?previous=true")
    assert previous.text == "first life\n"
    CriLogWriter(path).close()  # the old instance's file stays as it was
    current_path = agent.runner.current("default", "web", "app").log_path
    writer = CriLogWriter(current_path)
    writer.write_line(STDOUT, "second life")
    writer.close()
    assert (await get(agent, "/containerLogs/default/web/app")).text.endswith("second life\n")
    assert (await get(agent, "/containerLogs/default/web/app?previous=1")).text == "first life\n"


async def test_follow_streams_new_lines_and_ends_when_the_container_stops(agent: Agent) -> None:
    await agent.runner.add(pod("web", line="start"))
    current = agent.runner.current("default", "web", "app")
    writer = CriLogWriter(current.log_path)
    async with (
        httpx.AsyncClient(verify=agent.client_context(), trust_env=False) as client,
        client.stream("GET", agent.url + "/containerLogs/default/web/app?follow=true") as answer,
    ):
        assert answer.status_code == 200
        chunks = answer.aiter_text()
        seen = ""
        deadline = time.monotonic() + 20
        while "start\n" not in seen:
            seen += await asyncio.wait_for(anext(chunks), deadline - time.monotonic())
        writer.write_line(STDOUT, "later")
        while "later\n" not in seen:
            seen += await asyncio.wait_for(anext(chunks), deadline - time.monotonic())
        await agent.runtime.stop_container(current.id, 0)
        async for text in chunks:  # the stream ends once the container is not running
            seen += text
    writer.close()
    assert seen == "start\nlater\n"


# -- exec ------------------------------------------------------------------------------------


def exec_url(agent: Agent, *command: str, **flags: bool) -> str:
    query = "&".join(f"command={quote(part, safe='')}" for part in command)
    for flag, on in flags.items():
        if on:
            query += f"&{flag}=1"
    return agent.url.replace("https", "wss") + "/exec/default/web/app?" + query


async def run_exec(
    agent: Agent,
    url: str,
    protocol: str | None,
    stdin: bytes | None = None,
) -> tuple[dict[int, bytes], list[Any]]:
    """Channel bytes received, and every message in order."""
    received: dict[int, bytes] = {}
    messages: list[Any] = []
    proto = channels.PROTOCOLS.get(protocol or "channel.k8s.io")
    assert proto is not None
    async with connect(
        url,
        ssl=agent.client_context(),
        subprotocols=[websockets.Subprotocol(protocol)] if protocol else None,
        proxy=None,
    ) as socket:
        assert socket.subprotocol == protocol
        if stdin is not None:
            await socket.send(channels.encode(proto, channels.STDIN, stdin))
            await socket.send(channels.encode_close(channels.STDIN))
        async for message in socket:
            messages.append(message)
            frame = channels.decode(proto, message)
            assert isinstance(frame, channels.Frame)
            received[frame.channel] = received.get(frame.channel, b"") + frame.data
        assert socket.close_code == 1000
    return received, messages


async def test_exec_v5_output_status_and_first_empty_frame(agent: Agent) -> None:
    await agent.runner.add(pod("web"))
    url = exec_url(agent, "echo", "ok", stdout=True, stderr=True)
    received, messages = await run_exec(agent, url, "v5.channel.k8s.io")
    assert messages[0] == bytes([channels.STDOUT])  # the streams are up
    assert received[channels.STDOUT] == b"ok\n"
    assert json.loads(received[channels.ERROR]) == {"metadata": {}, "status": "Success"}


async def test_exec_exit_code_and_stderr(agent: Agent) -> None:
    await agent.runner.add(pod("web"))
    url = exec_url(agent, "sh", "-c", "echo bad >&2; exit 3", stdout=True, stderr=True)
    received, _ = await run_exec(agent, url, "v4.channel.k8s.io")
    assert received[channels.STDERR] == b"bad\n"
    status = json.loads(received[channels.ERROR])
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert channels.exit_code(received[channels.ERROR]) == 3


async def test_exec_stdin_until_the_v5_close_signal(agent: Agent) -> None:
    await agent.runner.add(pod("web"))
    url = exec_url(agent, "cat", stdin=True, stdout=True)
    received, _ = await run_exec(agent, url, "v5.channel.k8s.io", stdin=b"typed input\n")
    assert received[channels.STDOUT] == b"typed input\n"
    assert channels.exit_code(received[channels.ERROR]) == 0


async def test_exec_base64_and_legacy_protocols(agent: Agent) -> None:
    await agent.runner.add(pod("web"))
    url = exec_url(agent, "sh", "-c", "echo hi; exit 2", stdout=True)
    received, messages = await run_exec(agent, url, "v4.base64.channel.k8s.io")
    assert all(isinstance(m, str) for m in messages)
    assert messages[1] == "1" + base64.b64encode(b"hi\n").decode()
    assert channels.exit_code(received[channels.ERROR]) == 2
    # Before v4 the error channel carries the failure's text, and nothing on success.
    received, _ = await run_exec(agent, url, None)
    assert received[channels.ERROR].startswith(b"command terminated with non-zero exit code")
    received, _ = await run_exec(agent, exec_url(agent, "true", stdout=True), "channel.k8s.io")
    assert channels.ERROR not in received


async def test_exec_refusals(agent: Agent) -> None:
    await agent.runner.add(pod("web"))
    await agent.runner.add(pod("slow"), start=False)
    wss = agent.url.replace("https", "wss")
    cases = {
        exec_url(agent, "true"): (400, "you must specify at least 1 of stdin, stdout, stderr"),
        wss + "/exec/default/web/app?stdout=1": (
            400,
            "you must specify at least one command for the container",
        ),
        wss + "/exec/default/nope/app?stdout=1&command=true": (404, 'pod "nope" does not exist'),
        wss + "/exec/default/slow/app?stdout=1&command=true": (
            404,
            'container not found ("app")',
        ),
    }
    for url, (code, text) in cases.items():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await connect(url, ssl=agent.client_context(), proxy=None)
        response = refused.value.response
        assert (response.status_code, (response.body or b"").decode()) == (code, text), url
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        await connect(
            exec_url(agent, "true", stdout=True),
            ssl=agent.client_context(),
            subprotocols=[websockets.Subprotocol("v9.channel.k8s.io")],
            proxy=None,
        )
    assert refused.value.response.status_code == 400
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        await connect(
            exec_url(agent, "true", stdout=True),
            ssl=agent.client_context(certificate=False),
            proxy=None,
        )
    assert refused.value.response.status_code == 401
