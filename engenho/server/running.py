"""``engenho server``: open the log and projections, serve the API, shut down cleanly.

Start: PKI (CA, serving certificate, admin credentials, service account signing key) → log →
single-voter proposer → projections (migrated, caught up) → registry → boot-time objects →
kubeconfig → HTTPS.

SIGTERM or SIGINT: stop accepting connections, end watch streams, let in-flight requests
finish (writes are acknowledged only once durable and applied), then close the projections and
the log (which persists the commit index) and exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from engenho.api import (
    Authenticator,
    Check,
    Health,
    Metrics,
    NodeAgents,
    ServiceAccountAuthenticator,
    SpdyExec,
    build_app,
    spdy_upgrading,
)
from engenho.log import Actor, LogStore
from engenho.node_agent.embedded import run_embedded_agent
from engenho.pki import (
    ServiceAccountTokens,
    ensure_pki,
    ensure_service_account_key,
    write_kubeconfig,
)
from engenho.projections import Projections
from engenho.reconcilers import ControllerManager
from engenho.registry import Registry
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE
from engenho.server.bootstrap import bootstrap, ensure_kubernetes_service
from engenho.server.collecting import CollectionPacer
from engenho.server.controllers import (
    install_controllers,
    node_lifecycle_arguments,
    scheduler_profiles,
)
from engenho.server.options import ServerOptions

__all__ = ["ADMIN", "run_server", "serve"]

_log = logging.getLogger("engenho.server")

ADMIN = Actor("admin", ("system:masters",))
_GRACEFUL_SECONDS = 10


class _Server(uvicorn.Server):
    """uvicorn's server with engenho's shutdown: signals are handled on the event loop and
    not re-raised afterwards (so the process exits 0), and watches end first."""

    def __init__(self, config: uvicorn.Config, shutdown: asyncio.Event) -> None:
        super().__init__(config)
        self._shutdown_event = shutdown

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._exit_requested, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _exit_requested(self, sig: int) -> None:
        _log.info("received %s: shutting down", signal.Signals(sig).name)
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        self._shutdown_event.set()

    async def shutdown(self, sockets: Any = None) -> None:
        self._shutdown_event.set()
        await super().shutdown(sockets)


def _continue_key(pki_dir: Path) -> bytes:
    """The key that authenticates continue tokens; kept so tokens survive a restart."""
    path = pki_dir / "continue-token.key"
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    return key


async def serve(options: ServerOptions, *, ready: asyncio.Event | None = None) -> int:
    data = options.data
    data.root.mkdir(parents=True, exist_ok=True)
    wildcard = {"0.0.0.0", "::"}  # noqa: S104 - names, not a bind
    hosts = sorted({options.host, "localhost", "127.0.0.1", options.node_name} - wildcard)
    pki = await asyncio.to_thread(ensure_pki, data.pki, hosts=hosts)
    accounts = ServiceAccountTokens(await asyncio.to_thread(ensure_service_account_key, data.pki))
    log = await LogStore.open(data.log)
    try:
        voter = SingleVoter(log)
        projections = await Projections.open(options.projections_url, log)
        try:
            return await _serve(options, pki, accounts, log, voter, projections, ready)
        finally:
            await projections.close()
    finally:
        await log.close()


async def _serve(
    options: ServerOptions,
    pki: Any,
    accounts: ServiceAccountTokens,
    log: LogStore,
    voter: SingleVoter,
    projections: Projections,
    ready: asyncio.Event | None,
) -> int:
    data = options.data
    registry = Registry(
        proposer=voter,
        projections=projections,
        commit_index=lambda: log.commit_index,
        token_key=_continue_key(data.pki),
        bookmark_interval=options.bookmark_interval,
        network=options.network,
    )
    created = await bootstrap(registry)
    if created:
        _log.info("created %d boot-time objects", created)
    controllers = ControllerManager(registry)
    names = install_controllers(
        controllers,
        registry,
        options.config,
        arguments={
            "serviceaccount": {"ca_pem": pki.ca_pem.decode("ascii")},
            "serviceaccount-token": {"tokens": accounts, "ca_pem": pki.ca_pem.decode("ascii")},
            "scheduler": {"profiles": scheduler_profiles(options.config)},
            "node-lifecycle": node_lifecycle_arguments(options.config),
        },
    )
    _log.info("controllers: %s", ", ".join(names))
    controllers.start()
    pacer = CollectionPacer()
    pacer.start()
    try:
        return await _listen(options, pki, accounts, log, projections, registry, ready)
    finally:
        await pacer.stop()
        await controllers.stop()


async def _listen(
    options: ServerOptions,
    pki: Any,
    accounts: ServiceAccountTokens,
    log: LogStore,
    projections: Projections,
    registry: Registry,
    ready: asyncio.Event | None,
) -> int:
    data = options.data
    shutdown = asyncio.Event()
    metrics = Metrics()
    log.add_batch_observer(metrics.observe_batch)
    health = Health(
        live=[Check("log", lambda: log.healthy)],
        ready=[
            Check("projections", lambda: projections.applied_index >= log.commit_index),
            Check("accepting-writes", lambda: not shutdown.is_set()),
        ],
    )
    authenticator = Authenticator(
        {pki.admin_token: ADMIN}, ServiceAccountAuthenticator(accounts, registry)
    )
    node_agents = NodeAgents.from_pki(registry, CATALOGUE, shutdown, pki)
    app, resources = build_app(
        registry=registry,
        catalogue=CATALOGUE,
        authenticator=authenticator,
        metrics=metrics,
        health=health,
        server_address=f"{options.host}:{options.port}",
        shutdown=shutdown,
        node_agents=node_agents,
        service_account_tokens=accounts,
    )
    metrics.track(
        lambda: projections.applied_index, lambda: log.commit_index, lambda: resources.watchers
    )
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        # kubectl before 1.30 asks for pods/exec over SPDY/3.1, below what ASGI can serve.
        http=spdy_upgrading(SpdyExec(node_agents, authenticator)),
        ssl_context_factory=lambda _config, _default: pki.server_ssl_context(),
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=_GRACEFUL_SECONDS,
        timeout_keep_alive=60,
        proxy_headers=False,
        server_header=False,
    )
    server = _Server(config, shutdown)
    config.load()
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.01)
    if serving.done():
        await serving
        return 1
    port = server.servers[0].sockets[0].getsockname()[1]
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host  # noqa: S104
    url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    await ensure_kubernetes_service(registry, host, port)
    write_kubeconfig(
        data.kubeconfig, server=url, ca_pem=pki.ca_pem, user="admin", token=pki.admin_token
    )
    _log.info("serving the Kubernetes API at %s (kubeconfig: %s)", url, data.kubeconfig)
    print(f"engenho is serving at {url}; export KUBECONFIG={data.kubeconfig}", flush=True)
    if ready is not None:
        ready.set()
    node_agent = _start_node_agent(options, shutdown)
    try:
        await serving
    finally:
        if node_agent is not None:
            shutdown.set()  # the agent stops (and closes its connections) on shutdown
            await asyncio.gather(node_agent, return_exceptions=True)
    _log.info("stopped serving; closing the projections and the log")
    return 0


def _start_node_agent(options: ServerOptions, shutdown: asyncio.Event) -> asyncio.Task[None] | None:
    """This server's own node (unless ``--runtime none``), started once the API listens: a
    client of the API with the admin kubeconfig just written, the configured runtime (oci
    falls back to fake when crun cannot run here, saying why)."""
    if options.runtime == "none":
        return None
    return asyncio.create_task(
        run_embedded_agent(
            options.data,
            options.config,
            options.runtime,
            stop=shutdown,
            labels={"node-role.kubernetes.io/control-plane": "true"},
        ),
        name="node agent",
    )


def run_server(options: ServerOptions) -> int:
    return uvloop.run(serve(options))
