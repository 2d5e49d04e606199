"""An in-memory store of objects, indexed by namespace/name, namespace and labels.

Filled by an :class:`~engenho.client.informer.Informer` (one writer); read by anyone in the
same event loop. Reads return the stored objects themselves: models are immutable, and
dicts must be treated as read-only (copy before changing one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from engenho.client.objects import labels_of, name_of, namespace_of
from engenho.client.watching import EventType, WatchEvent
from engenho.selectors import LabelSelector, parse_label_selector

__all__ = ["Key", "Store"]

T = TypeVar("T")
K = TypeVar("K", str, tuple[str, str])
Key = tuple[str, str]
"""``(namespace, name)``; the namespace is empty for cluster-scoped objects."""


class Store(Generic[T]):
    """Objects by key, with a namespace index and a label (key, value) index."""

    def __init__(self) -> None:
        self._objects: dict[Key, T] = {}
        self._by_namespace: dict[str, set[Key]] = {}
        self._by_label: dict[tuple[str, str], set[Key]] = {}
        self.resource_version = ""
        """The resourceVersion of the list or event the store reflects."""

    # ------------------------------------------------------------------ reads

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._objects.values()))

    def keys(self) -> list[Key]:
        return sorted(self._objects)

    def get(self, name: str, namespace: str = "") -> T | None:
        return self._objects.get((namespace, name))

    def list(
        self,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
    ) -> list[T]:
        """Matching objects in key order. ``label_selector`` is text (``app=web,tier!=db``)
        or a parsed selector; an invalid text raises ``InvalidLabelSelectorError``."""
        selector = (
            parse_label_selector(label_selector)
            if isinstance(label_selector, str)
            else label_selector
        )
        candidates: set[Key] | None = None
        if namespace is not None:
            candidates = set(self._by_namespace.get(namespace, ()))
        if selector is not None:
            for requirement in selector.requirements:
                value = selector.requires_exact_match(requirement.key)
                if value is not None:
                    indexed = self._by_label.get((requirement.key, value), set())
                    candidates = indexed if candidates is None else candidates & indexed
        keys = sorted(self._objects if candidates is None else candidates)
        found = [self._objects[key] for key in keys]
        if selector is not None:
            found = [obj for obj in found if selector.matches(labels_of(obj))]
        return found

    # ------------------------------------------------------------------ writes

    def replace(self, objects: Iterable[T], resource_version: str) -> None:
        """Hold exactly ``objects`` (a fresh list)."""
        self._objects.clear()
        self._by_namespace.clear()
        self._by_label.clear()
        for obj in objects:
            self._put(obj)
        self.resource_version = resource_version

    def apply(self, event: WatchEvent[T]) -> T | None:
        """Apply one watch event; returns the object it replaced or removed, if any."""
        key = (namespace_of(event.object), name_of(event.object))
        old = self._remove(key)
        if event.type is not EventType.DELETED:
            self._put(event.object)
        if event.resource_version:
            self.resource_version = event.resource_version
        return old

    def _put(self, obj: T) -> None:
        key = (namespace_of(obj), name_of(obj))
        self._remove(key)
        self._objects[key] = obj
        self._by_namespace.setdefault(key[0], set()).add(key)
        for label in labels_of(obj).items():
            self._by_label.setdefault(label, set()).add(key)

    def _remove(self, key: Key) -> T | None:
        old = self._objects.pop(key, None)
        if old is None:
            return None
        _discard(self._by_namespace, key[0], key)
        for label in labels_of(old).items():
            _discard(self._by_label, label, key)
        return old


def _discard(index: dict[K, set[Key]], entry: K, key: Key) -> None:
    keys = index.get(entry)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[entry]
