"""What pods refer to, kept current from the apiserver: Services (for the service
environment variables) and the ConfigMaps and Secrets pods use.

Like the kubelet's watch-based managers, a referenced ConfigMap or Secret gets its own
single-object watch (``metadata.name=<name>``) for as long as some pod refers to it, so a
change reaches the pods' volumes within moments, and a pod that goes releases its watches.
Services are one informer over every namespace, as upstream's service lister. One
:class:`Sources` can serve many simulated nodes in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from engenho.client import ALL_NAMESPACES, Informer, KubeClient, WatchEvent

__all__ = ["Sources"]

_log = logging.getLogger("engenho.node_agent")
Obj = dict[str, Any]
_Key = tuple[str, str, str]  # (resource, namespace, name)


class _Watched:
    __slots__ = ("informer", "owners", "ready")

    def __init__(self, informer: Informer[Obj]) -> None:
        self.informer = informer
        self.owners: dict[str, Callable[[], None]] = {}
        self.ready: asyncio.Task[None] | None = None


class Sources:
    def __init__(self, client: KubeClient, *, sync_timeout: float = 30.0) -> None:
        self._client = client
        self._sync_timeout = sync_timeout
        self._watched: dict[_Key, _Watched] = {}
        self._services: Informer[Obj] | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ services

    async def services(self) -> list[Obj]:
        """Every Service (the informer is started on first use and kept)."""
        if self._services is None:
            self._services = self._client.informer("services", namespace=ALL_NAMESPACES)
            self._services.start()
        async with asyncio.timeout(self._sync_timeout):
            await self._services.wait_synced()
        return self._services.store.list()

    # ------------------------------------------------------------------ referenced objects

    async def get(
        self, resource: str, namespace: str, name: str, owner: str, on_change: Callable[[], None]
    ) -> Obj | None:
        """The object (None when it does not exist), watched from now on for ``owner``
        (a pod uid), whose ``on_change`` is called when it changes."""
        key = (resource, namespace, name)
        watched = self._watched.get(key)
        if watched is None:
            informer: Informer[Obj] = self._client.informer(
                resource, namespace=namespace, field_selector=f"metadata.name={name}"
            )
            watched = _Watched(informer)
            self._watched[key] = watched

            async def dispatch(event: WatchEvent[Obj], entry: _Watched = watched) -> None:
                if event.synthetic and event.type.value == "ADDED":
                    return  # the initial list: nothing changed
                for callback in list(entry.owners.values()):
                    callback()

            await informer.add_handler(dispatch)
            informer.start()
        watched.owners[owner] = on_change
        try:
            async with asyncio.timeout(self._sync_timeout):
                await watched.informer.wait_synced()
        except BaseException:
            # A watch that failed (forbidden, say) is dropped, so the next ask tries anew.
            if self._watched.get(key) is watched and not watched.informer.synced:
                del self._watched[key]
                with contextlib.suppress(Exception):
                    await watched.informer.stop()
            raise
        return watched.informer.store.get(name, namespace)

    async def release(self, owner: str, keys: Iterable[_Key] | None = None) -> None:
        """Forget ``owner``'s interest (in ``keys``, or in everything); watches nobody
        needs any more stop."""
        stopping = []
        for key, watched in list(self._watched.items()):
            if keys is not None and key not in keys:
                continue
            watched.owners.pop(owner, None)
            if not watched.owners:
                del self._watched[key]
                stopping.append(watched.informer)
        for informer in stopping:
            try:
                await informer.stop()
            except Exception as exc:  # it failed earlier; nothing left to do with it
                _log.debug("stopping a watch: %s", exc)

    async def close(self) -> None:
        informers = [w.informer for w in self._watched.values()]
        self._watched.clear()
        if self._services is not None:
            informers.append(self._services)
            self._services = None
        for informer in informers:
            try:
                await informer.stop()
            except Exception as exc:
                _log.debug("stopping a watch: %s", exc)
