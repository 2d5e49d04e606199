"""``engenho agent``: run a node agent (kubelet) against any Kubernetes API server.

``engenho agent --kubeconfig FILE --node-name NAME --runtime fake|oci|wasm [--data-dir DIR]
[--node-label k=v]... [--node-taint k=v:Effect]... [--host-path-allow DIR]... [--node-ip IP]
[--node-status-update-frequency DURATION] [--node-lease-duration-seconds N]
[--simulate-nodes COUNT]``

With ``--simulate-nodes N`` the process runs N simulated nodes named ``NAME-0`` ...
``NAME-<N-1>`` with the fake runtime (each with its own Node, Lease and pods). SIGTERM or
SIGINT stops the agent (containers keep running and are adopted by the next agent) and the
command exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
from pathlib import Path

import uvloop

from engenho.client import ConfigError, KubeClient
from engenho.node_agent.agent import AgentConfig, NodeAgent, lease_renew_interval
from engenho.node_agent.choosing import RUNTIME_KINDS, open_runtime
from engenho.node_agent.fleet import SimulatedFleet
from engenho.node_agent.node import parse_label, parse_taint
from engenho.node_agent.runtime import ContainerRuntimeError
from engenho.paths import DataDir, default_data_dir

__all__ = ["register"]

_log = logging.getLogger("engenho.node_agent")


def _label(text: str) -> tuple[str, str]:
    try:
        return parse_label(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _taint(text: str) -> dict[str, str]:
    try:
        return parse_taint(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _duration(text: str) -> float:
    """A kubelet duration (``10s``, ``500ms``, ``1m``) or plain seconds, above zero."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match["number"]) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration above zero such as 10s, 500ms or 1m"
        )
    return float(match["number"]) * _UNIT_SECONDS[match["unit"]]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--simulate-nodes must be at least 1, not {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = subparsers.add_parser(
        "agent",
        help="run a node agent (kubelet) against a Kubernetes API server",
        description="Registers a Node and runs the pods bound to it.",
    )
    agent.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="the API server and credentials (default: kubectl's rules)",
    )
    agent.add_argument("--node-name", required=True, help="the Node's name")
    agent.add_argument(
        "--runtime", choices=RUNTIME_KINDS, default="fake", help="how pods are run (default: fake)"
    )
    agent.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="engenho's data directory: images in DIR/images, the agent's "
        "state and container logs in DIR/node (default: $XDG_DATA_HOME/engenho)",
    )
    agent.add_argument(
        "--node-label",
        type=_label,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label of the Node (repeatable)",
    )
    agent.add_argument(
        "--node-taint",
        type=_taint,
        action="append",
        default=[],
        metavar="KEY=VALUE:EFFECT",
        help="a taint the Node registers with (repeatable)",
    )
    agent.add_argument(
        "--host-path-allow",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory pods may mount as hostPath (repeatable; none by default)",
    )
    agent.add_argument(
        "--node-ip",
        default=None,
        help="the Node's InternalIP (default: the host's primary address)",
    )
    agent.add_argument(
        "--simulate-nodes",
        type=_count,
        default=None,
        metavar="COUNT",
        help="run COUNT simulated nodes NAME-0..NAME-<COUNT-1> (fake runtime)",
    )
    agent.add_argument(
        "--node-status-update-frequency",
        type=_duration,
        default=10.0,
        metavar="DURATION",
        help="how often the Node's status is computed and, if changed, posted (default: 10s)",
    )
    agent.add_argument(
        "--node-lease-duration-seconds",
        type=_positive,
        default=40,
        metavar="SECONDS",
        help="the Lease's duration; it is renewed every quarter of it (default: 40)",
    )
    agent.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return uvloop.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    data = DataDir(args.data_dir or default_data_dir())
    allowed = [os.path.realpath(p) for p in args.host_path_allow]  # noqa: ASYNC240 - at start
    config = AgentConfig(
        node_name=args.node_name,
        data_dir=data.node,
        labels=dict(args.node_label),
        taints=tuple(args.node_taint),
        host_path_allowlist=tuple(allowed),
        node_ip=args.node_ip,
        status_update_every=args.node_status_update_frequency,
        lease_duration=args.node_lease_duration_seconds,
        lease_renew_every=lease_renew_interval(args.node_lease_duration_seconds),
    )
    try:
        client = KubeClient.from_kubeconfig(args.kubeconfig, field_manager="kubelet")
    except ConfigError as exc:
        raise SystemExit(f"engenho agent: {exc}") from exc
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    runtime = None
    try:
        if args.simulate_nodes:
            if args.runtime != "fake":
                raise SystemExit("engenho agent: --simulate-nodes runs the fake runtime only")
            await SimulatedFleet(client, config, args.simulate_nodes).run()
        else:
            try:
                runtime = await open_runtime(args.runtime, data.root)
            except ContainerRuntimeError as exc:
                raise SystemExit(f"engenho agent: the {args.runtime} runtime: {exc}") from exc
            await NodeAgent(client, runtime, config).run()
    except asyncio.CancelledError:
        _log.info("stopping the node agent")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if runtime is not None:
            await runtime.close()
        await client.aclose()
    return 0
