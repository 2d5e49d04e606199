"""Liveness, readiness and startup probes, as the kubelet's prober runs them.

A probe is an exec (run in the container through the runtime), an httpGet (2xx and 3xx
pass; ``User-Agent: kube-probe/1.29``), a tcpSocket (a connection passes) or a grpc handler
(not available here: every run is "unknown", which moves no counter, as upstream treats a
probe that could not run). Upstream's defaults: initial delay 0, period 10 s, timeout 1 s,
success threshold 1 (always 1 for liveness and startup), failure threshold 3.

:class:`ProbeWorker` runs one probe of one container instance: it waits the initial delay,
probes every period, counts consecutive results and reports when a threshold is crossed
(``on_change(True/False)``); every failure is also reported as an ``Unhealthy`` Warning
with upstream's wording (``Liveness probe failed: HTTP probe failed with statuscode: 500``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from attrs import frozen

__all__ = [
    "Outcome",
    "ProbeKind",
    "ProbeResult",
    "ProbeSpec",
    "ProbeWorker",
    "http_probe",
    "resolve_port",
    "tcp_probe",
]

Obj = Mapping[str, Any]
ExecRunner = Callable[[Sequence[str], float], Awaitable[tuple[int, bytes]]]
"""``run(argv, timeout) -> (exit code, output)``; raises TimeoutError, or any error when the
command could not run."""
_USER_AGENT = "kube-probe/1.29"
_BODY_LIMIT = 10 * 1024


class ProbeKind(enum.Enum):
    LIVENESS = "Liveness"
    READINESS = "Readiness"
    STARTUP = "Startup"

    @property
    def field(self) -> str:
        return f"{self.value.lower()}Probe"


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"
    """The probe could not be run: counts neither way."""


@frozen
class ProbeResult:
    outcome: Outcome
    output: str = ""


@frozen
class ProbeSpec:
    kind: ProbeKind
    handler: Mapping[str, Any]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, container: Obj, kind: ProbeKind) -> ProbeSpec | None:
        probe = container.get(kind.field)
        if not probe:
            return None
        success = int(probe.get("successThreshold") or 1)
        if kind is not ProbeKind.READINESS:
            success = 1
        return cls(
            kind=kind,
            handler=probe,
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(max(1, int(probe.get("periodSeconds") or 10))),
            timeout=float(max(1, int(probe.get("timeoutSeconds") or 1))),
            success_threshold=max(1, success),
            failure_threshold=max(1, int(probe.get("failureThreshold") or 3)),
        )


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for declared in container.get("ports") or []:
        if declared.get("name") == text:
            return int(declared.get("containerPort"))
    raise ValueError(f"couldn't find port: {text} in {container.get('name')}")


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _insecure() -> ssl.SSLContext:
    # Upstream's prober does not verify certificates (InsecureSkipVerify).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def http_probe(handler: Obj, container: Obj, host: str, limit: float) -> ProbeResult:
    """An httpGet probe (upstream's ``DoHTTPProbe``)."""
    scheme = str(handler.get("scheme") or "HTTP").lower()
    port = resolve_port(handler.get("port"), container)
    path = str(handler.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    target = str(handler.get("host") or host)
    url = f"{scheme}://{_join(target, port)}{quote(path, safe='/?&=%:+,;@!$*()~')}"
    headers = {"User-Agent": _USER_AGENT, "Accept": "*/*", "Connection": "close"}
    for header in handler.get("httpHeaders") or []:
        headers[str(header.get("name"))] = str(header.get("value"))
    try:
        async with (
            httpx.AsyncClient(
                verify=_insecure() if scheme == "https" else True,
                timeout=limit,
                follow_redirects=True,
                max_redirects=10,
                trust_env=False,
            ) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _BODY_LIMIT:
                    break
            code = response.status_code
    except httpx.TimeoutException:
        return ProbeResult(
            Outcome.FAILURE,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
            "headers)",
        )
    except httpx.TooManyRedirects:
        return ProbeResult(Outcome.FAILURE, f'Get "{url}": stopped after 10 redirects')
    except (httpx.HTTPError, OSError) as exc:
        return ProbeResult(Outcome.FAILURE, f'Get "{url}": {_dial_error(exc, target, port)}')
    if 200 <= code < 400:
        return ProbeResult(Outcome.SUCCESS, body[:_BODY_LIMIT].decode(errors="replace"))
    return ProbeResult(Outcome.FAILURE, f"HTTP probe failed with statuscode: {code}")


def _dial_error(exc: BaseException, host: str, port: int) -> str:
    text = str(exc).lower()
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            text = "connection refused"
            break
        cause = cause.__cause__ or cause.__context__
    if "refused" in text:
        return f"dial tcp {_join(host, port)}: connect: connection refused"
    if "unreachable" in text:
        return f"dial tcp {_join(host, port)}: connect: no route to host"
    return f"dial tcp {_join(host, port)}: {exc}"


async def tcp_probe(handler: Obj, container: Obj, host: str, limit: float) -> ProbeResult:
    """A tcpSocket probe: a connection passes."""
    port = resolve_port(handler.get("port"), container)
    target = str(handler.get("host") or host)
    try:
        async with asyncio.timeout(limit):
            _reader, writer = await asyncio.open_connection(target, port)
    except TimeoutError:
        return ProbeResult(Outcome.FAILURE, f"dial tcp {_join(target, port)}: i/o timeout")
    except OSError as exc:
        return ProbeResult(Outcome.FAILURE, _dial_error(exc, target, port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(Outcome.SUCCESS)


async def run_probe(
    spec: ProbeSpec, container: Obj, host: str, run_exec: ExecRunner
) -> ProbeResult:
    handler = spec.handler
    try:
        if handler.get("exec") is not None:
            argv = [str(part) for part in (handler["exec"].get("command") or [])]
            if not argv:
                return ProbeResult(Outcome.UNKNOWN, "exec probe has no command")
            try:
                code, output = await run_exec(argv, spec.timeout)
            except TimeoutError:
                return ProbeResult(Outcome.FAILURE, f"command {' '.join(argv)!r} timed out")
            text = output.decode(errors="replace")
            return ProbeResult(Outcome.SUCCESS if code == 0 else Outcome.FAILURE, text)
        if handler.get("httpGet") is not None:
            return await http_probe(handler["httpGet"], container, host, spec.timeout)
        if handler.get("tcpSocket") is not None:
            return await tcp_probe(handler["tcpSocket"], container, host, spec.timeout)
        if handler.get("grpc") is not None:
            return ProbeResult(Outcome.UNKNOWN, "grpc probes are not supported by this node agent")
    except ValueError as exc:
        return ProbeResult(Outcome.UNKNOWN, str(exc))
    except Exception as exc:  # an exec that could not run, a runtime failure
        return ProbeResult(Outcome.UNKNOWN, str(exc) or type(exc).__name__)
    return ProbeResult(Outcome.UNKNOWN, "missing probe handler")


class ProbeWorker:
    """One probe of one container instance (upstream's prober worker).

    ``on_change(passing)`` is called when the counted state flips: readiness starts
    unready and reports True after ``success_threshold`` passes and False after
    ``failure_threshold`` failures; liveness and startup report False once (the container is
    then killed) and startup reports True once. ``on_event(type, message)`` gets the
    ``Unhealthy`` warnings. ``gate`` (the startup probe's success) holds liveness and
    readiness back."""

    def __init__(
        self,
        spec: ProbeSpec,
        container: Obj,
        host: str,
        run_exec: ExecRunner,
        on_change: Callable[[bool], None],
        on_warning: Callable[[str], None],
        *,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.spec = spec
        self._container = container
        self._host = host
        self._run_exec = run_exec
        self._on_change = on_change
        self._on_warning = on_warning
        self._gate = gate
        self.results: list[Outcome] = []

    async def run(self) -> None:
        spec = self.spec
        if self._gate is not None:
            await self._gate.wait()
        if spec.initial_delay:
            await asyncio.sleep(spec.initial_delay)
        passing: bool | None = False if spec.kind is ProbeKind.READINESS else None
        successes = failures = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            result = await run_probe(spec, self._container, self._host, self._run_exec)
            self.results.append(result.outcome)
            if result.outcome is Outcome.SUCCESS:
                successes, failures = successes + 1, 0
            elif result.outcome is Outcome.FAILURE:
                successes, failures = 0, failures + 1
                self._on_warning(f"{spec.kind.value} probe failed: {result.output}")
            else:
                self._on_warning(f"{spec.kind.value} probe errored: {result.output}")
            if successes >= spec.success_threshold and passing is not True:
                if spec.kind is ProbeKind.STARTUP:
                    self._on_change(True)
                    return
                if spec.kind is ProbeKind.READINESS:
                    passing = True
                    self._on_change(True)
            if failures >= spec.failure_threshold and passing is not False:
                if spec.kind is ProbeKind.READINESS:
                    passing = False
                    self._on_change(False)
                else:
                    self._on_change(False)
                    return
            elapsed = loop.time() - started
            await asyncio.sleep(max(0.0, spec.period - elapsed))
