"""A plain reference model of the apply semantics, written from the specification text.

It folds commands over a dict and reports, per entry, what the projection must report: the
outcome and the watch event. Tests compare the SQL projection with it.
"""

from __future__ import annotations

import copy
from typing import Any

from attrs import define, frozen

from engenho.log import ResourceCommand, Verb

Key = tuple[str, str, str, str]  # group, resource, namespace, name


@frozen
class ModelObject:
    uid: str
    rv: int
    obj: dict[str, Any]


@frozen
class ModelOutcome:
    applied: bool
    reason: str | None
    event: str | None
    rv: int | None
    obj: dict[str, Any] | None


@frozen
class ModelEvent:
    index: int
    type: str
    key: Key
    obj: dict[str, Any]


def stamped(obj: dict[str, Any], index: int) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    result.setdefault("metadata", {})["resourceVersion"] = str(index)
    return result


@define
class Model:
    state: dict[Key, ModelObject]
    applied: int = 0

    @classmethod
    def empty(cls) -> Model:
        return cls({})

    def apply(self, index: int, command: ResourceCommand) -> tuple[ModelOutcome, ModelEvent | None]:
        assert index == self.applied + 1
        self.applied = index
        k = command.key
        if command.verb is Verb.SYSTEM or k is None:
            return ModelOutcome(True, None, None, None, None), None
        key = (k.group, k.resource, k.namespace, k.name)
        prior = self.state.get(key)
        pre = command.precondition

        def reject(reason: str) -> tuple[ModelOutcome, None]:
            return ModelOutcome(False, reason, None, None, None), None

        if pre.must_not_exist and prior is not None:
            return reject("AlreadyExists")
        if pre.resource_version is not None:
            if prior is None:
                return reject("NotFound")
            if prior.rv != pre.resource_version:
                return reject("Conflict")
        if pre.uid is not None:
            if prior is None:
                return reject("NotFound")
            if prior.uid != pre.uid:
                return reject("UIDMismatch")
        if command.verb is not Verb.CREATE and prior is None:
            return reject("NotFound")
        if command.object is not None:  # create, update, patch-result, lingering delete
            obj = stamped(command.object, index)
            self.state[key] = ModelObject(command.uid, index, obj)
            kind = "ADDED" if prior is None else "MODIFIED"
            return ModelOutcome(True, None, kind, index, obj), ModelEvent(index, kind, key, obj)
        assert prior is not None
        del self.state[key]
        last = stamped(prior.obj, index)
        return ModelOutcome(True, None, "DELETED", index, last), ModelEvent(
            index, "DELETED", key, last
        )

    def objects(self, group: str = "", resource: str = "configmaps") -> dict[Key, ModelObject]:
        return {k: v for k, v in self.state.items() if k[0] == group and k[1] == resource}
