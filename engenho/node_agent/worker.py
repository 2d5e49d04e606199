"""One pod on this node: a task that drives the pod machine and carries out what it asks.

The worker owns everything about its pod on the node and does it in one task, so changes
to a pod are serial without locks:

1. **Sandbox.** An address from the node's pod CIDR (or the node's for ``hostNetwork``), the
   runtime sandbox, then the volumes. Until all three are there the pod shows its
   containers waiting in ``ContainerCreating`` and Events say what it waits for
   (``NetworkNotReady``, ``FailedCreatePodSandBox``, ``FailedMount``); each is retried.
2. **The machine.** :func:`engenho.node_agent.lifecycle.step` is fed what happened
   (launch outcomes, exits the runtime reports or a relist finds, probe verdicts, deletion,
   the clock) and its effects are carried out: ``Launch`` (image, env and mounts, create,
   start, with upstream's Pulled/Created/Started events) and ``Kill`` (the pre-stop hook,
   then the stop signal and SIGKILL after the grace period) run as sub-tasks that answer
   with events; ``WakeAt`` sets a timer; ``Emit`` posts an Event; ``Stopped`` leads to the
   final status and the final ``DELETE`` (grace 0, uid precondition).
3. **Status.** After each round the worker computes the pod's status and patches
   ``pods/<name>/status`` when it differs from what the API holds.
4. **Cleanup.** When the pod is gone from the API and nothing runs, the sandbox is removed,
   the address released and the logs deleted.

A pod the API already shows finished (Succeeded or Failed) is not run again: the worker
only waits for its deletion. After an agent restart, containers the runtime still holds are
adopted (fed to the machine as what happened) instead of being started twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import logging
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from attrs import evolve

from engenho.client import (
    ApiError,
    ConflictError,
    NotFoundError,
    PatchType,
    Preconditions,
    TransportError,
)
from engenho.node_agent import lifecycle as machine
from engenho.node_agent.addresses import PoolExhaustedError
from engenho.node_agent.containers import (
    container_config,
    dns_config,
    find_container,
    log_path,
    pod_ref,
    pull_policy,
    sandbox_config,
)
from engenho.node_agent.environment import (
    EnvError,
    PodFacts,
    expand_static,
    referenced_objects,
    resolve_env,
)
from engenho.node_agent.environment import expand_command as expand_argv
from engenho.node_agent.probes import ProbeKind, ProbeSpec, ProbeWorker, http_probe
from engenho.node_agent.recording import ObjectReference
from engenho.node_agent.runtime import (
    ContainerNotFoundError,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    ImageError,
    ImageInfo,
    ImageNeverPullError,
    NetworkMode,
    PodNetwork,
    PullPolicy,
    SandboxState,
    SandboxStatus,
    StartContainerError,
    exec_capture,
)
from engenho.node_agent.status import pod_status, status_differs, status_patch
from engenho.node_agent.volumes import PodVolumes, VolumeError
from engenho.node_agent.volumes import referenced_objects as volume_references

if TYPE_CHECKING:
    from engenho.node_agent.agent import NodeAgent as NodeContext

__all__ = ["PodWorker", "is_terminal"]

_log = logging.getLogger("engenho.node_agent")
Obj = dict[str, Any]
_RETRY_INITIAL = 1.0
_RETRY_MAX = 30.0
_KEEP_INSTANCES = 2  # the running instance and the previous one (kubectl logs --previous)


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _rv(obj: Obj) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


class _Retry:
    """A doubling retry delay (1 s to 30 s) with the time of the next attempt."""

    def __init__(self) -> None:
        self.delay = _RETRY_INITIAL
        self.at = 0.0

    def failed(self, now: float) -> None:
        self.at = now + self.delay
        self.delay = min(self.delay * 2, _RETRY_MAX)

    def reset(self) -> None:
        self.delay = _RETRY_INITIAL
        self.at = 0.0


class PodWorker:
    """The worker of one pod (by uid). The agent calls :meth:`update`, :meth:`removed`,
    :meth:`container_changed` and :meth:`relisted`; :meth:`run` does the rest."""

    def __init__(
        self,
        node: NodeContext,
        pod: Obj,
        *,
        adopted: list[ContainerStatus] | None = None,
        sandbox: SandboxStatus | None = None,
    ) -> None:
        meta = pod.get("metadata") or {}
        self.uid = str(meta.get("uid"))
        self.namespace = str(meta.get("namespace"))
        self.name = str(meta.get("name"))
        self.pod = pod
        self._node = node
        self._adopted = list(adopted or [])
        self._sandbox = sandbox
        self._poke = asyncio.Event()
        self._inbox: collections.deque[tuple[str | None, machine.Event]] = collections.deque()
        self._notes: collections.deque[ContainerStatus] = collections.deque()
        # Only the latest relist matters (each is the runtime's whole view).
        self._relists: collections.deque[dict[str, ContainerStatus]] = collections.deque(maxlen=1)
        self._wakes: list[datetime] = []
        self._gone = False
        self._refs_changed = False
        self._record: machine.PodRecord | None = None
        self._started_machine = False
        self._volumes = PodVolumes(
            node.pod_dir(self.uid),
            node.config.host_path_allowlist,
            tmpfs=node.runtime.name != "fake",
        )
        self._volumes_ready = False
        self._pod_ips: tuple[str, ...] = ()
        self._host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
        self._network_reason = ""
        self._start_time = node.now()
        self._tasks: set[asyncio.Task[None]] = set()
        self._probes: dict[tuple[str, ProbeKind], tuple[str, asyncio.Task[None]]] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self.instances: dict[str, list[ContainerStatus]] = {}
        """Runtime instances of each container, oldest first (logs, exec, GC)."""
        self._images: dict[str, ImageInfo] = {}
        self._sandbox_retry = _Retry()
        self._volume_retry = _Retry()
        self._status_retry = _Retry()
        self._delete_retry = _Retry()
        self._deleted = False
        self._released_network = False
        self._references: set[tuple[str, str, str]] = set()
        self._last_patch: tuple[int, Obj] | None = None
        self._deferred: list[str] = []
        self._meta_signature: tuple[str, str] | None = None
        self.finished = asyncio.Event()

    # ------------------------------------------------------------------ the agent's calls

    def update(self, pod: Obj) -> None:
        if _rv(pod) >= _rv(self.pod):
            self.pod = pod
        self._poke.set()

    def removed(self) -> None:
        self._gone = True
        self._poke.set()

    def container_changed(self, status: ContainerStatus) -> None:
        self._notes.append(status)
        self._poke.set()

    def relisted(self, statuses: dict[str, ContainerStatus]) -> None:
        """Every container the runtime holds for this pod, by id."""
        self._relists.append(statuses)
        self._poke.set()

    def references_changed(self) -> None:
        self._refs_changed = True
        self._poke.set()

    @property
    def sandbox(self) -> SandboxStatus | None:
        return self._sandbox

    @property
    def gone(self) -> bool:
        return self._gone

    @property
    def pod_ip(self) -> str | None:
        return None if self._host_network or not self._pod_ips else self._pod_ips[0]

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        try:
            if is_terminal(self.pod):
                await self._run_finished()
            else:
                await self._run()
        finally:
            await self._stop_tasks()
            self.finished.set()

    async def _stop_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._probes.clear()

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine, name=f"{self.name}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sleep(self, until: float | None) -> None:
        """Wait for a poke, or until ``until`` (loop time), whichever comes first."""
        loop = asyncio.get_running_loop()
        deadlines = [until] if until is not None else []
        if self._wakes:
            seconds = (self._wakes[0] - self._node.now()).total_seconds()
            deadlines.append(loop.time() + max(0.0, seconds))
        timeout = None if not deadlines else max(0.0, min(deadlines) - loop.time())
        if not self._poke.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._poke.wait()
            except TimeoutError:
                pass
        self._poke.clear()

    async def _run_finished(self) -> None:
        """A pod the API shows finished: stop what still runs, delete it when asked."""
        for status in self._adopted:
            if status.state is ContainerState.RUNNING:
                with contextlib.suppress(ContainerRuntimeError):
                    await self._node.runtime.stop_container(status.id, self._node.config.min_grace)
        while not self._gone:
            self._notes.clear()  # nothing runs the machine here: runtime news is moot
            self._relists.clear()
            meta = self.pod.get("metadata") or {}
            if meta.get("deletionTimestamp") and not self._deleted:
                await self._final_delete()
            retry = self._delete_retry.at
            await self._sleep(retry if retry > asyncio.get_running_loop().time() else None)
        await self._cleanup()

    async def _run(self) -> None:
        node = self._node
        self._record = machine.new_pod(
            pod_ref(self.pod), self.pod.get("spec") or {}, node.config.back_off
        )
        if self._adopted:
            self._adopt()
        while True:
            now = node.now()
            self._handle_deletion(now)
            if not self._started_machine and not self._record.deleting:
                await self._prepare()
            self._drain(now)
            if self._volumes_ready and (self._refs_changed or self._pod_changed_volumes()):
                await self._refresh_volumes()
            await self._sync_status()
            record = self._record
            if record.stopped and not self._gone and not self._deleted:
                await self._final_delete()
            if self._settled() and not self._released_network:
                self._release_network()
            if self._gone and self._all_down():
                break
            loop = asyncio.get_running_loop()
            retries = [
                r.at
                for r in (
                    self._sandbox_retry,
                    self._volume_retry,
                    self._status_retry,
                    self._delete_retry,
                )
                if r.at > loop.time()
            ]
            await self._sleep(min(retries) if retries else None)
        await self._cleanup()

    # ------------------------------------------------------------------ the machine

    def _step(self, event: machine.Event) -> None:
        assert self._record is not None
        self._record, effects = machine.step(self._record, event)
        for effect in effects:
            self._carry_out(effect)
        self._reconcile_probes()

    def _carry_out(self, effect: machine.Effect) -> None:
        match effect:
            case machine.Launch(container=name):
                if self._started_machine:
                    self._spawn(self._launch(name), f"launch {name}")
                else:
                    self._deferred.append(name)  # launched once the sandbox is ready
            case machine.Kill(container=name, grace=grace, reason=reason):
                self._spawn(self._kill(name, grace, reason), f"kill {name}")
            case machine.WakeAt(at=at):
                heapq.heappush(self._wakes, at)
                # Look again halfway (at most a second on): a failure shows as such
                # (ErrImagePull) until the next look, which shows the back-off in force.
                now = self._node.now()
                halfway = now + min(timedelta(seconds=1), (at - now) / 2)
                if now < halfway < at:
                    heapq.heappush(self._wakes, halfway)
            case machine.Emit(kind=kind, reason=reason, message=message, container=container):
                self._event(kind, reason, message, container)
            case machine.Stopped():
                pass  # the loop sees record.stopped and deletes the pod

    def _post(self, event: machine.Event, container_id: str | None = None) -> None:
        """An outcome for the machine, from a sub-task or a probe (``container_id``: only if
        that instance is still the current one)."""
        self._inbox.append((container_id, event))
        self._poke.set()

    def _current_id(self, name: str) -> str | None:
        assert self._record is not None
        try:
            state = self._record.container(name).state
        except KeyError:
            return None
        return state.container_id if isinstance(state, machine.Running) else None

    def _drain(self, now: datetime) -> None:
        """Feed the machine everything that happened since the last round."""
        while self._notes:
            self._runtime_note(self._notes.popleft(), now)
        while self._relists:
            self._relist(self._relists.popleft())
        while self._inbox:
            container_id, event = self._inbox.popleft()
            name = getattr(event, "container", None)
            if (
                container_id is not None
                and name is not None
                and self._current_id(name) != container_id
            ):
                continue  # a verdict about an instance that has since gone
            self._step(event)
        due = False
        while self._wakes and self._wakes[0] <= now:
            heapq.heappop(self._wakes)
            due = True
        if due:
            self._step(machine.Tick(now))

    def _handle_deletion(self, now: datetime) -> None:
        record = self._record
        if record is None or record.deleting:
            return
        meta = self.pod.get("metadata") or {}
        if self._gone:
            self._step(machine.DeletionRequested(now, timedelta(0)))
        elif meta.get("deletionTimestamp"):
            grace = meta.get("deletionGracePeriodSeconds")
            seconds = timedelta(seconds=int(grace)) if grace is not None else None
            self._step(machine.DeletionRequested(now, seconds))

    def _exit_event(self, status: ContainerStatus, now: datetime) -> machine.Exited:
        reason = status.reason if status.reason in ("OOMKilled", "ContainerStatusUnknown") else None
        code = status.exit_code if status.exit_code is not None else 137
        return machine.Exited(
            status.name, status.finished_at or now, code, reason=reason, message=status.message
        )

    def _remember(self, status: ContainerStatus) -> None:
        instances = self.instances.setdefault(status.name, [])
        for index, known in enumerate(instances):
            if known.id == status.id:
                instances[index] = status
                return
        instances.append(status)

    def _runtime_note(self, status: ContainerStatus, now: datetime) -> None:
        self._remember(status)
        if status.state is ContainerState.EXITED and self._current_id(status.name) == status.id:
            self._step(self._exit_event(status, now))

    def _relist(self, statuses: dict[str, ContainerStatus]) -> None:
        assert self._record is not None
        for status in statuses.values():
            self._runtime_note(status, self._node.now())
        for record in self._record.containers:
            state = record.state
            if isinstance(state, machine.Running) and state.container_id not in statuses:
                self._spawn(self._confirm_vanished(record.name, state.container_id), "check")

    async def _confirm_vanished(self, name: str, container_id: str) -> None:
        """A container missing from a relist: ask about it before calling it gone (the list
        may predate its start)."""
        try:
            status = await self._node.runtime.container_status(container_id)
        except ContainerNotFoundError:
            self._post(machine.Vanished(name, self._node.now()), container_id)
            return
        except ContainerRuntimeError:
            return
        self.container_changed(status)

    def _adopt(self) -> None:
        """Feed the machine what the runtime still holds for this pod (an agent restart), so
        that nothing running is started again."""
        assert self._record is not None
        by_name: dict[str, list[ContainerStatus]] = {}
        for status in sorted(self._adopted, key=lambda s: (s.attempt, s.created_at)):
            by_name.setdefault(status.name, []).append(status)
            self._remember(status)
        record = self._record
        api = _api_statuses(self.pod)
        events: list[machine.Event] = []
        for container in record.containers:
            instances = [s for s in by_name.get(container.name, []) if s.started_at is not None]
            if instances:
                latest = instances[-1]
                events.append(
                    machine.Started(
                        latest.name,
                        latest.started_at or latest.created_at,
                        latest.id,
                        image_id=latest.image_ref,
                    )
                )
                if latest.state is ContainerState.EXITED:
                    events.append(self._exit_event(latest, self._node.now()))
            elif container.spec.kind is machine.ContainerKind.INIT:
                terminated = (api.get(container.name) or {}).get("state", {}).get("terminated")
                if terminated and terminated.get("exitCode") == 0:
                    at = self._node.now()
                    events.append(machine.Started(container.name, at, ""))
                    events.append(machine.Exited(container.name, at, 0))
        for event in events:
            record, _effects = machine.step(record, event)  # history: its effects are past
        # Restart counts come from the runtime's attempt numbers and the API, not the
        # number of events fed.
        for container in record.containers:
            instances = by_name.get(container.name, [])
            counted = max(
                [s.attempt for s in instances]
                + [int((api.get(container.name) or {}).get("restartCount") or 0)]
            )
            if counted > container.restart_count:
                record = record.replace(evolve(container, restart_count=counted))
        # Launches the history asked for and the runtime did not answer are still wanted.
        # Launches and kills the history asked for are planned again from the state.
        self._record = evolve(
            record,
            containers=tuple(evolve(c, launching=False, stopping=False) for c in record.containers),
        )

    # ------------------------------------------------------------------ sandbox

    async def _prepare(self) -> None:
        """Address, sandbox, volumes; then start the machine. Each step retried."""
        loop = asyncio.get_running_loop()
        if loop.time() < max(self._sandbox_retry.at, self._volume_retry.at):
            return
        if not self._pod_ips and not await self._allocate_address():
            return
        if self._sandbox is not None and self._sandbox.state is not SandboxState.READY:
            # An adopted sandbox that lost its namespaces: make a new one.
            with contextlib.suppress(ContainerRuntimeError):
                await self._node.runtime.remove_sandbox(self._sandbox.id)
            self._sandbox = None
        if self._sandbox is None and not await self._create_sandbox():
            self._sandbox_retry.failed(loop.time())
            return
        self._sandbox_retry.reset()
        if not self._volumes_ready:
            if not await self._setup_volumes():
                self._volume_retry.failed(loop.time())
                return
            self._volumes_ready = True
            self._volume_retry.reset()
        self._started_machine = True
        deferred, self._deferred = self._deferred, []
        for name in deferred:
            self._spawn(self._launch(name), f"launch {name}")
        self._step(machine.Tick(self._node.now()))

    async def _allocate_address(self) -> bool:
        node = self._node
        if self._host_network:
            self._pod_ips = node.host_ips
            return True
        pool = node.address_pool()
        if pool is None:
            reason = node.network_problem()
            if reason and self._network_reason != reason:
                self._network_reason = reason
                self._event("Warning", "NetworkNotReady", reason)
            return False  # the agent pokes every worker when the node gets its pod CIDR
        try:
            claimed = self._sandbox.ip if self._sandbox is not None else None
            if claimed and pool.claim(self.uid, claimed):
                address = pool.get(self.uid)
            else:
                address = pool.allocate(self.uid)
        except PoolExhaustedError as exc:
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            self._sandbox_retry.failed(asyncio.get_running_loop().time())
            return False
        self._network_reason = ""
        self._pod_ips = (str(address),)
        return True

    async def _create_sandbox(self) -> bool:
        node = self._node
        network = None
        if not self._host_network:
            pool = node.address_pool()
            assert pool is not None
            network = PodNetwork(pool.network, pool.get(self.uid))  # type: ignore[arg-type]
        dns = dns_config(
            self.pod,
            cluster_dns=node.config.cluster_dns,
            cluster_domain=node.config.cluster_domain,
            use_cluster_dns=await node.cluster_dns_served(),
        )
        directory = node.pod_dir(self.uid)
        config = sandbox_config(self.pod, directory, network, dns)
        try:
            self._sandbox = await node.runtime.create_sandbox(config)
        except (ContainerRuntimeError, OSError) as exc:
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            return False
        node.sandbox_created(self)
        if self._sandbox.network_mode is NetworkMode.HOST and network is not None:
            # The runtime could not give the pod its own network: it is reachable at the
            # node's address, so that is the address to report (the one allocated goes back).
            _log.info(
                "pod %s/%s shares the host's network: %s",
                self.namespace,
                self.name,
                self._sandbox.network_message or "the runtime has no pod networks here",
            )
            pool = node.address_pool()
            if pool is not None:
                pool.release(self.uid)
            self._pod_ips = node.host_ips
        return True

    def _facts(self) -> PodFacts:
        return PodFacts(
            self.pod,
            pod_ips=self._pod_ips,
            host_ips=self._node.host_ips,
            allocatable=self._node.allocatable(),
        )

    async def _objects(
        self, config_maps: set[str], secrets: set[str]
    ) -> tuple[dict[str, Obj | None], dict[str, Obj | None]]:
        """The ConfigMaps and Secrets named, watched for this pod from now on."""
        sources = self._node.sources
        found_maps: dict[str, Obj | None] = {}
        found_secrets: dict[str, Obj | None] = {}
        for resource, names, found in (
            ("configmaps", config_maps, found_maps),
            ("secrets", secrets, found_secrets),
        ):
            for name in sorted(names):
                self._references.add((resource, self.namespace, name))
                found[name] = await sources.get(
                    resource, self.namespace, name, self.uid, self.references_changed
                )
        return found_maps, found_secrets

    async def _fetch_token(self, account: str, audience: str | None, expiration: int) -> str:
        request: Obj = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": expiration,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            },
        }
        if audience:
            request["spec"]["audiences"] = [audience]
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token"
        try:
            answer = await self._node.client.request("POST", path, body=request)
        except (ApiError, TransportError) as exc:
            raise VolumeError(f"failed to fetch token: {exc}") from exc
        token = ((answer or {}).get("status") or {}).get("token")
        if not token:
            raise VolumeError("failed to fetch token: the answer has no token")
        return str(token)

    async def _setup_volumes(self) -> bool:
        config_maps, secrets = volume_references(self.pod)
        try:
            found_maps, found_secrets = await self._objects(config_maps, secrets)
        except (ApiError, TransportError, TimeoutError) as exc:
            self._event("Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
            return False
        failures, notices = await self._volumes.setup(
            self.pod,
            self._facts(),
            config_maps=found_maps,
            secrets=found_secrets,
            fetch_token=self._fetch_token,
        )
        for notice in notices:
            self._event("Warning", notice.reason, notice.message)
        for volume, message in failures:
            self._event(
                "Warning",
                "FailedMount",
                f'MountVolume.SetUp failed for volume "{volume}" : {message}',
            )
        return not failures

    def _pod_changed_volumes(self) -> bool:
        """Labels or annotations changed: downward API volumes read them."""
        meta = self.pod.get("metadata") or {}
        signature = (str(meta.get("labels")), str(meta.get("annotations")))
        previous = self._meta_signature
        self._meta_signature = signature
        return previous is not None and previous != signature

    async def _refresh_volumes(self) -> None:
        self._refs_changed = False
        await self._setup_volumes()

    def _release_network(self) -> None:
        self._released_network = True
        pool = self._node.address_pool()
        if pool is not None and not self._host_network:
            pool.release(self.uid)

    def _settled(self) -> bool:
        """Finished (or deleted) with nothing running: the pod's address can go."""
        record = self._record
        if record is None or not self._started_machine:
            return self._gone
        finished = record.stopped or machine.phase(record) in ("Succeeded", "Failed")
        return finished and self._all_down()

    def _all_down(self) -> bool:
        record = self._record
        if record is None:
            return True
        return not any(c.running or c.launching or c.stopping for c in record.containers)

    # ------------------------------------------------------------------ launching

    def _container_spec(self, name: str) -> Obj:
        spec = find_container(self.pod, name)
        if spec is None:
            raise KeyError(name)
        return spec

    async def _launch(self, name: str) -> None:
        try:
            event = await self._launch_steps(name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.exception("launching %s of %s/%s", name, self.namespace, self.name)
            event = machine.CreateFailed(name, self._node.now(), "CreateContainerError", str(exc))
        self._post(event)

    async def _ensure_image(self, name: str, container: Obj) -> ImageInfo | machine.PullFailed:
        node = self._node
        image = str(container.get("image") or "")
        policy = pull_policy(container)
        if policy is PullPolicy.ALWAYS:
            self._event("Normal", "Pulling", f'Pulling image "{image}"', name)
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            info = await node.runtime.ensure_image(image, policy)
        except ImageError as exc:
            if isinstance(exc, ImageNeverPullError):
                self._event(
                    "Warning",
                    "ErrImageNeverPull",
                    f'Container image "{image}" is not present with pull policy of Never',
                    name,
                )
            elif exc.reason == "ErrImagePull":
                self._event(
                    "Warning", "Failed", f'Failed to pull image "{image}": {exc.message}', name
                )
            else:
                self._event(
                    "Warning",
                    "InspectFailed",
                    f'Failed to apply default image tag "{image}": {exc.message}',
                    name,
                )
            return machine.PullFailed(name, node.now(), exc.reason, exc.message)
        if policy is PullPolicy.ALWAYS:
            took = loop.time() - began
            self._event(
                "Normal",
                "Pulled",
                f'Successfully pulled image "{image}" in {_go_seconds(took)} '
                f"({_go_seconds(took)} including waiting)",
                name,
            )
        else:
            self._event(
                "Normal", "Pulled", f'Container image "{image}" already present on machine', name
            )
        self._images[name] = info
        return info

    async def _launch_steps(self, name: str) -> machine.Event:
        node = self._node
        container = self._container_spec(name)
        pulled = await self._ensure_image(name, container)
        if isinstance(pulled, machine.PullFailed):
            return pulled
        info = pulled
        # Configuration: env (ConfigMaps, Secrets, Services, the downward API) and mounts.
        try:
            config_maps, secrets = referenced_objects(container)
            found_maps, found_secrets = await self._objects(config_maps, secrets)
            services = await node.sources.services()
            result = resolve_env(
                container,
                self._facts(),
                config_maps=found_maps,
                secrets=found_secrets,
                services=services,
            )
            for reason, message in result.warnings:
                self._event("Warning", reason, message)
            command, args = expand_argv(container, result.env)
            mounts = self._volumes.mounts(container, result.as_dict())
        except (EnvError, VolumeError) as exc:
            return machine.CreateFailed(name, node.now(), "CreateContainerConfigError", exc.message)
        except (ApiError, TransportError, TimeoutError) as exc:
            return machine.CreateFailed(name, node.now(), "CreateContainerConfigError", str(exc))
        assert self._record is not None
        assert self._sandbox is not None
        record = self._record.container(name)
        attempt = record.restart_count + (1 if record.ever_started else 0)
        config = container_config(
            self.pod,
            container,
            image=str(container.get("image") or ""),
            env=result.env,
            command=command,
            args=args,
            mounts=mounts,
            log=log_path(node.logs_dir, self.pod, name, attempt),
            attempt=attempt,
        )
        try:
            created = await node.runtime.create_container(self._sandbox.id, config)
        except ImageError as exc:
            return machine.PullFailed(name, node.now(), exc.reason, exc.message)
        except CreateContainerError as exc:
            self._event("Warning", "Failed", f"Error: {exc.message}", name)
            return machine.CreateFailed(name, node.now(), "CreateContainerError", exc.message)
        self._remember(created)
        self._event("Normal", "Created", f"Created container {name}", name)
        try:
            started = await node.runtime.start_container(created.id)
        except StartContainerError as exc:
            with contextlib.suppress(ContainerRuntimeError):
                self._remember(await node.runtime.container_status(created.id))
            return machine.CreateFailed(name, node.now(), "RunContainerError", exc.message)
        self._remember(started)
        self._event("Normal", "Started", f"Started container {name}", name)
        self._spawn(self._collect_garbage(name), f"gc {name}")
        hook = ((container.get("lifecycle") or {}).get("postStart")) or None
        if hook:
            failure = await self._run_hook(hook, container, started.id, None)
            if failure is not None:
                self._event("Warning", "FailedPostStartHook", failure, name)
                with contextlib.suppress(ContainerRuntimeError):
                    await node.runtime.stop_container(started.id, node.config.min_grace)
        return machine.Started(
            name, started.started_at or node.now(), started.id, image_id=info.repo_digest
        )

    async def _collect_garbage(self, name: str) -> None:
        """Keep the running instance and the one before it; remove older ones."""
        instances = self.instances.get(name, [])
        while len(instances) > _KEEP_INSTANCES:
            old = instances.pop(0)
            with contextlib.suppress(ContainerRuntimeError):
                await self._node.runtime.remove_container(old.id)
            # The runtime leaves logs to the agent: the removed instance's go with it.
            for path in old.log_path.parent.glob(f"{old.log_path.name}*"):
                path.unlink(missing_ok=True)

    async def _run_hook(
        self, hook: Obj, container: Obj, container_id: str, limit: float | None
    ) -> str | None:
        """Run a lifecycle hook within ``limit`` seconds; upstream's failure message, or
        None when it succeeded."""
        where = f'for Container "{container.get("name")}" in Pod "{pod_ref(self.pod)}"'
        try:
            async with asyncio.timeout(limit):
                if hook.get("exec") is not None:
                    argv = expand_static(hook["exec"].get("command") or [], container)
                    result = await exec_capture(self._node.runtime, container_id, argv)
                    if result.exit_code == 0:
                        return None
                    output = (result.stdout + result.stderr).decode(errors="replace")
                    return (
                        f"Exec lifecycle hook ([{' '.join(argv)}]) {where} failed - error: "
                        f"command '{' '.join(argv)}' exited with {result.exit_code}: , "
                        f"message: {output!r}"
                    )
                if hook.get("httpGet") is not None:
                    handler = hook["httpGet"]
                    answer = await http_probe(handler, container, self._probe_host(), limit or 30)
                    if answer.outcome.value == "success":
                        return None
                    return (
                        f"HTTP lifecycle hook ({handler.get('path', '/')}) {where} failed - "
                        f"error: {answer.output}"
                    )
        except TimeoutError:
            return f"Lifecycle hook {where} did not finish within {limit} s"
        except ContainerRuntimeError as exc:
            return f"Lifecycle hook {where} failed - error: {exc}"
        return None

    async def _kill(self, name: str, grace: timedelta, reason: str) -> None:
        node = self._node
        container_id = self._current_id(name)
        if container_id is None:
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        seconds = max(grace.total_seconds(), node.config.min_grace)
        container = find_container(self.pod, name) or {"name": name}
        hook = (container.get("lifecycle") or {}).get("preStop")
        if hook and reason != "pod completed":
            failure = await self._run_hook(hook, container, container_id, seconds)
            if failure is not None:
                self._event("Warning", "FailedPreStopHook", failure, name)
            seconds = max(seconds - (loop.time() - began), node.config.min_grace)
        try:
            status = await node.runtime.stop_container(container_id, seconds)
        except ContainerNotFoundError:
            self._post(machine.Vanished(name, node.now()), container_id)
            return
        except ContainerRuntimeError as exc:
            # Its state is unknown now; removing the sandbox later kills what is left.
            _log.warning("stopping %s of %s/%s: %s", name, self.namespace, self.name, exc)
            self._post(machine.Vanished(name, node.now()), container_id)
            return
        self._remember(status)
        self._post(self._exit_event(status, node.now()), container_id)

    # ------------------------------------------------------------------ probes

    def _probe_host(self) -> str:
        """Where probes connect: the pod IP when the pod really has it, else the loopback
        (the fake runtime, or a runtime that fell back to the host network)."""
        if self._node.runtime.name == "fake":
            return "127.0.0.1"
        if self._host_network:
            return self._node.host_ips[0]
        if self._sandbox is not None and self._sandbox.network_mode is NetworkMode.POD:
            return self._sandbox.ip or self._pod_ips[0]
        return "127.0.0.1"

    def _reconcile_probes(self) -> None:
        record = self._record
        assert record is not None
        live: set[tuple[str, ProbeKind]] = set()
        for state in record.containers:
            if not isinstance(state.state, machine.Running) or state.stopping:
                continue
            container_id = state.state.container_id
            gate = self._gates.setdefault(container_id, asyncio.Event())
            if state.started:
                gate.set()
            container = find_container(self.pod, state.name)
            if container is None:
                continue
            for kind in ProbeKind:
                spec = ProbeSpec.of(container, kind)
                if spec is None:
                    continue
                key = (state.name, kind)
                live.add(key)
                current = self._probes.get(key)
                if current is not None and current[0] == container_id:
                    continue
                if current is not None:
                    current[1].cancel()
                worker = ProbeWorker(
                    spec,
                    container,
                    self._probe_host(),
                    self._exec_runner(container_id),
                    self._probe_verdict(state.name, container_id, kind),
                    self._probe_warning(state.name),
                    gate=None if kind is ProbeKind.STARTUP else gate,
                )
                task = self._spawn(worker.run(), f"{kind.value} probe {state.name}")
                self._probes[key] = (container_id, task)
        for key in list(self._probes):
            if key not in live:
                self._probes.pop(key)[1].cancel()
        running = {
            c.state.container_id for c in record.containers if isinstance(c.state, machine.Running)
        }
        for container_id in list(self._gates):
            if container_id not in running:
                del self._gates[container_id]

    def _exec_runner(self, container_id: str) -> Callable[..., Any]:
        async def run(argv: Any, limit: float) -> tuple[int, bytes]:
            async with asyncio.timeout(limit):
                result = await exec_capture(self._node.runtime, container_id, argv)
            return result.exit_code, result.stdout + result.stderr

        return run

    def _probe_verdict(
        self, name: str, container_id: str, kind: ProbeKind
    ) -> Callable[[bool], None]:
        def verdict(passing: bool) -> None:
            now = self._node.now()
            event: machine.Event
            if kind is ProbeKind.READINESS:
                event = machine.ReadinessChanged(name, now, passing)
            elif passing:
                event = machine.StartupSucceeded(name, now)
            else:
                event = machine.ProbeKill(name, now, kind.value.lower())
            self._post(event, container_id)

        return verdict

    def _probe_warning(self, name: str) -> Callable[[str], None]:
        def warn(message: str) -> None:
            self._event("Warning", "Unhealthy", message, name)

        return warn

    # ------------------------------------------------------------------ status

    def _event(self, kind: str, reason: str, message: str, container: str | None = None) -> None:
        self._node.record(ObjectReference.of_pod(self.pod, container), kind, reason, message)

    async def _sync_status(self) -> None:
        record = self._record
        if record is None or self._gone:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._status_retry.at:
            return
        node = self._node
        desired = pod_status(
            self.pod,
            record,
            runtime=node.runtime.name,
            host_ips=node.host_ips,
            pod_ips=self._pod_ips,
            start_time=self._start_time,
            sandbox_ready=self._started_machine,
            now=node.now(),
            sandbox_message=self._network_reason,
        )
        current = self.pod.get("status") or {}
        if not status_differs(current, desired):
            return
        if self._last_patch is not None:
            sent_at, sent = self._last_patch
            if sent == desired and _rv(self.pod) <= sent_at:
                return  # already written; the watch has not shown it yet
        try:
            updated = await node.client.patch(
                "pods",
                self.name,
                status_patch(desired, self.uid),
                patch_type=PatchType.STRATEGIC,
                namespace=self.namespace,
                subresource="status",
            )
        except (NotFoundError, ConflictError):
            return  # gone, or a new pod of the same name: the watch will say
        except (ApiError, TransportError) as exc:
            _log.warning("status of pod %s/%s not written: %s", self.namespace, self.name, exc)
            self._status_retry.failed(loop.time())
            return
        self._status_retry.reset()
        self._last_patch = (_rv(updated), desired)
        self.update(updated)

    async def _final_delete(self) -> None:
        """Remove the pod object now that nothing of it runs (grace 0, this uid only)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._delete_retry.at:
            return
        try:
            await self._node.client.delete(
                "pods",
                self.name,
                namespace=self.namespace,
                grace_period_seconds=0,
                preconditions=Preconditions(uid=self.uid),
            )
        except (NotFoundError, ConflictError):
            pass
        except (ApiError, TransportError) as exc:
            _log.warning("pod %s/%s not deleted: %s", self.namespace, self.name, exc)
            self._delete_retry.failed(loop.time())
            return
        self._delete_retry.reset()
        self._deleted = True

    async def _cleanup(self) -> None:
        node = self._node
        await self._stop_tasks()
        await self._volumes.teardown()
        if self._sandbox is not None:
            try:
                await node.runtime.remove_sandbox(self._sandbox.id)
            except ContainerRuntimeError as exc:
                _log.warning("removing the sandbox of %s/%s: %s", self.namespace, self.name, exc)
        else:
            for instances in self.instances.values():
                for status in instances:
                    with contextlib.suppress(ContainerRuntimeError):
                        await node.runtime.remove_container(status.id)
        if not self._released_network:
            self._release_network()
        await node.sources.release(self.uid)
        directory = node.pod_dir(self.uid)
        logs = node.logs_dir / f"{self.namespace}_{self.name}_{self.uid}"
        await asyncio.to_thread(shutil.rmtree, directory, True)
        await asyncio.to_thread(shutil.rmtree, logs, True)


def _api_statuses(pod: Obj) -> dict[str, Obj]:
    status = pod.get("status") or {}
    found: dict[str, Obj] = {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for entry in status.get(key) or []:
            found[str(entry.get("name"))] = entry
    return found


def _go_seconds(seconds: float) -> str:
    """Go's Duration text for a short time (``1.234s``, ``56ms``)."""
    if seconds >= 1:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    millis = seconds * 1000
    if millis >= 1:
        return f"{millis:.3f}".rstrip("0").rstrip(".") + "ms"
    return f"{int(seconds * 1e6)}µs"
