"""The write path: a request becomes one fully decided command, proposed and applied.

Every write follows the same steps (DESIGN.md rule 2; contract §3.3 of the seed notes):

1. read the current object (creates: check it is absent; others: that it exists);
2. build the candidate from the body or patch with the server-owned fields kept or set
   (uid, timestamps, generation, status);
3. default, prune or refuse unknown fields, validate (422 with every cause);
4. answer without proposing when nothing changes, or on dry run;
5. propose ONE command whose precondition is the exact state the candidate was computed
   from, and wait until it is applied; the apply step decides races, and a lost race is
   re-planned against the newer object (bounded) unless the client named a resourceVersion.

Refusals before step 5 leave the log untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from attrs import frozen

from engenho.log import (
    EncodingError,
    LogUnavailableError,
    Precondition,
    ResourceCommand,
    ResourceKey,
    Verb,
)
from engenho.projections import ApplyOutcome, Projections, StoredObject
from engenho.registry import refusals
from engenho.registry.admission import AdmissionSettings, admit_pod
from engenho.registry.allocation import (
    NetworkSettings,
    allocate_service,
    claims_of,
    prepare_node,
)
from engenho.registry.copying import deep_copy
from engenho.registry.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InternalError,
    InvalidError,
    MethodNotAllowedError,
    NotFoundError,
    ServiceUnavailableError,
    StatusCause,
    StatusError,
)
from engenho.registry.fieldsets import root_shape
from engenho.registry.managed import apply_intent, record_update, write_entries
from engenho.registry.naming import format_timestamp, generated_name, new_uid
from engenho.registry.patches import apply_json_patch, apply_merge_patch
from engenho.registry.requests import DeleteOptions, RequestContext
from engenho.registry.scaling import (
    apply_scale_patch,
    replicas_from_scale,
    scale_of,
    with_replicas,
)
from engenho.registry.strategic import strategic_merge
from engenho.registry.strategies import Strategy, strategy_for
from engenho.replication import Proposer
from engenho.schema import (
    Cause,
    CauseReason,
    ResourceType,
    UnknownResourceError,
    default,
    definition_for,
    unknown_fields,
    validate,
)

__all__ = ["DeleteResult", "Writer"]

_log = logging.getLogger("engenho.registry")
_Json = dict[str, Any]

WRITE_ATTEMPTS = 32
"""How often a write that lost a race is re-planned before it answers 409."""
CREATE_ATTEMPTS = 8
"""How often a create draws a new generated name or allocation when the last one was taken."""

_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


@frozen
class DeleteResult:
    """What a DELETE answers: the object (removed or now terminating) or a Success Status."""

    object: StoredObject | None
    status: _Json | None
    removed: bool


def _candidate(
    group: str,
    resource: str,
    namespace: str,
    name: str,
    uid: str,
    obj: _Json,
    resource_version: int = 0,
) -> StoredObject:
    """A dry run's answer: the object as it would be stored. Nothing was written, so it keeps
    the stored object's resourceVersion (none for a create)."""
    shown = deep_copy(obj)
    if resource_version:
        shown.setdefault("metadata", {})["resourceVersion"] = str(resource_version)
    else:
        shown.get("metadata", {}).pop("resourceVersion", None)
    return StoredObject(
        group=group,
        resource=resource,
        namespace=namespace,
        name=name,
        uid=uid,
        resource_version=resource_version,
        data=orjson.dumps(shown, option=orjson.OPT_SORT_KEYS),
    )


def _metadata(obj: _Json) -> _Json:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise BadRequestError("metadata must be an object")
    return meta


def _without(obj: _Json, *keys: str) -> _Json:
    return {k: v for k, v in obj.items() if k not in keys}


def _desired_state_changed(old: _Json, new: _Json) -> bool:
    """Generation moves when anything but metadata and status changes (upstream: the spec)."""
    ignored = ("metadata", "status", "apiVersion", "kind")
    return _without(old, *ignored) != _without(new, *ignored)


def _comparable_metadata(obj: _Json) -> _Json:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    rows = meta.get("managedFields")
    if isinstance(rows, list):
        # A write that changes nothing but the time its manager last touched the fields is
        # still nothing: re-applying an unchanged manifest must not append an entry.
        meta["managedFields"] = [
            {k: v for k, v in row.items() if k != "time"} if isinstance(row, dict) else row
            for row in rows
        ]
    return meta


def _same_object(old: _Json, new: _Json) -> bool:
    """A write whose result equals the stored object is a no-op (no entry, same RV)."""
    return _comparable_metadata(old) == _comparable_metadata(new) and _without(
        old, "metadata"
    ) == _without(new, "metadata")


def _terminal_finalizers(obj: _Json) -> bool:
    """True when nothing holds a deleted object any more (its finalizers are all gone)."""
    meta = obj.get("metadata", {})
    if meta.get("finalizers"):
        return False
    spec = obj.get("spec")
    return not (
        obj.get("kind") == "Namespace" and isinstance(spec, dict) and spec.get("finalizers")
    )


def _scheduled(conditions: Any, stamp: str) -> list[_Json]:
    """PodScheduled=True, as the binding sets it (keeping the other conditions)."""
    kept = [c for c in conditions or [] if isinstance(c, dict) and c.get("type") != "PodScheduled"]
    return [
        *kept,
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": stamp,
        },
    ]


def _manager(ctx: RequestContext) -> str:
    return ctx.field_manager or "unknown"


def _track(
    ctx: RequestContext,
    rt: ResourceType,
    old: _Json | None,
    new: _Json,
    subresource: str | None,
) -> None:
    """Record an Update's field ownership in ``new``'s managedFields."""
    entries = record_update(
        old,
        new,
        root_shape(rt.definition),
        manager=_manager(ctx),
        api_version=rt.api_version,
        time=format_timestamp(ctx.now),
        subresource=subresource or "",
    )
    write_entries(new, entries)


class Writer:
    """Creates, updates, patches and deletes objects through the log."""

    def __init__(
        self,
        proposer: Proposer,
        projections: Projections,
        network: NetworkSettings | None = None,
        admission: AdmissionSettings | None = None,
    ) -> None:
        self._proposer = proposer
        self._projections = projections
        self._network = network or NetworkSettings()
        self._admission = admission or AdmissionSettings()

    def _taken(self, prefix: str) -> set[str]:
        return set(self._projections.claims(prefix))

    # ------------------------------------------------------------------ shared steps

    async def _current(self, rt: ResourceType, namespace: str, name: str) -> StoredObject | None:
        return await self._projections.get(rt.group, rt.plural, namespace, name)

    def _check_identity(
        self, rt: ResourceType, namespace: str, body: Any, url_name: str | None
    ) -> _Json:
        """The URL decides the object's type, namespace and (for updates) name."""
        if not isinstance(body, dict):
            raise BadRequestError("the body of the request must be a JSON or YAML object")
        api_version = body.setdefault("apiVersion", rt.api_version)
        kind = body.setdefault("kind", rt.kind)
        if api_version != rt.api_version:
            raise BadRequestError(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if kind != rt.kind:
            raise BadRequestError(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"the kind {kind!r} does not match the resource {rt.plural!r}"
            )
        meta = _metadata(body)
        if rt.namespaced:
            body_namespace = meta.get("namespace")
            if body_namespace in (None, ""):
                meta["namespace"] = namespace
            elif body_namespace != namespace:
                raise BadRequestError(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
        else:
            meta.pop("namespace", None)
        if url_name is not None:
            body_name = meta.get("name")
            if body_name in (None, ""):
                meta["name"] = url_name
            elif body_name != url_name:
                raise BadRequestError(
                    f"the name of the object ({body_name}) does not match the name on the URL "
                    f"({url_name})"
                )
        return body

    def _admit(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        obj: _Json,
        old: _Json | None,
        subresource: str | None = None,
    ) -> None:
        """Default, mutate (admission), handle unknown fields per fieldValidation, validate;
        refuse with causes."""
        try:
            default(obj)
            if rt.group == "" and rt.plural == "pods" and subresource is None:
                # DefaultTolerationSeconds admits pods proper, not their subresources.
                admit_pod(obj, self._admission)
            unknown = unknown_fields(obj, prune=True)
            causes = validate(obj, old)
        except UnknownResourceError as exc:
            raise BadRequestError(str(exc)) from exc
        findings = [f'duplicate field "{path}"' for path in ctx.duplicate_fields] + [
            f'unknown field "{path}"' for path in unknown
        ]
        if findings:
            if ctx.field_validation == "Strict":
                raise BadRequestError(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    f"strict decoding error: {', '.join(findings)}"
                )
            if ctx.field_validation != "Ignore":
                ctx.warnings.extend(f for f in findings if f not in ctx.warnings)
        type_errors = [c for c in causes if c.reason is CauseReason.TYPE_INVALID]
        if type_errors:
            # Upstream's typed decoder refuses these before validation runs: a 400, not a 422.
            raise BadRequestError(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                + "; ".join(str(c) for c in type_errors)
            )
        if causes:
            raise refusals.invalid(rt, _metadata(obj).get("name", ""), causes)

    async def _namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        found = await self._projections.get("", "namespaces", "", namespace)
        if found is None:
            raise NotFoundError(
                f'namespaces "{namespace}" not found', name=namespace, kind="namespaces"
            )
        if found.object.get("metadata", {}).get("deletionTimestamp"):
            raise refusals.namespace_terminating(rt, name, namespace)

    async def _propose(self, ctx: RequestContext, command: ResourceCommand) -> ApplyOutcome:
        try:
            entries = await self._proposer.propose([command])
        except EncodingError as exc:
            raise BadRequestError(f"the object cannot be stored: {exc}") from exc
        except LogUnavailableError as exc:
            raise ServiceUnavailableError(f"the log cannot accept writes: {exc}") from exc
        return await self._projections.wait_outcome(entries[0].index)

    def _command(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        verb: Verb,
        namespace: str,
        name: str,
        uid: str,
        obj: _Json | None,
        precondition: Precondition,
    ) -> ResourceCommand:
        return ResourceCommand(
            verb=verb,
            key=ResourceKey(rt.group, rt.version, rt.plural, namespace, name),
            uid=uid,
            object=obj,
            precondition=precondition,
            actor=ctx.actor,
            request_id=ctx.request_id,
            time=ctx.now,
            # Every version names what it holds: a write without them would release them.
            claims=claims_of(rt.group, rt.plural, obj),
        )

    @staticmethod
    def _refused(rt: ResourceType, name: str, outcome: ApplyOutcome) -> StatusError:
        if outcome.reason == "AlreadyExists":
            return refusals.already_exists(rt, name)
        if outcome.reason == "NotFound":
            return refusals.not_found(rt, name)
        if outcome.reason in ("Conflict", "UIDMismatch"):
            return refusals.conflict(rt, name)
        return InternalError(f"the write was refused: {outcome.reason}")

    # ------------------------------------------------------------------ create

    async def create(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        body: Any,
        *,
        applied: bool = False,
    ) -> StoredObject:
        """POST. ``applied`` means server-side apply already wrote the managedFields."""
        if "create" not in rt.verbs:
            raise MethodNotAllowedError(
                "the server does not allow this method on the requested resource"
            )
        # A copy: the caller's dict stays as it was (controllers create from one template).
        obj = self._check_identity(rt, namespace, deep_copy(body), None)
        meta = _metadata(obj)
        prefix = meta.get("generateName")
        prefix = prefix if isinstance(prefix, str) else ""
        if not meta.get("name") and not prefix:
            raise refusals.invalid(
                rt,
                "",
                [
                    Cause(
                        CauseReason.REQUIRED,
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )
                ],
            )
        generated = not meta.get("name")
        if generated:
            meta["name"] = generated_name(prefix)
        if meta.get("resourceVersion"):
            raise BadRequestError("resourceVersion should not be set on objects to be created")
        strategy = strategy_for(rt.group, rt.plural)
        uid = new_uid()
        meta["uid"] = uid
        meta["creationTimestamp"] = format_timestamp(ctx.now)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(field, None)
        if strategy.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        strategy.prepare_create(obj)
        status = strategy.initial_status(obj)
        if status is None:
            obj.pop("status", None)
        else:
            obj["status"] = status
        self._admit(ctx, rt, obj, None)
        if not applied:
            _track(ctx, rt, None, obj, None)
        await self._namespace_open(rt, namespace, meta["name"])
        # A generated name that is taken is drawn again, as upstream's RetryGenerateName does
        # (27^5 suffixes collide often enough in a few thousand creates to matter); so is an
        # address or port another writer claimed first.
        allocating = rt.group == "" and rt.plural == "services"
        node = rt.group == "" and rt.plural == "nodes"
        base = obj
        for _attempt in range(CREATE_ATTEMPTS):
            name = meta["name"]
            if await self._current(rt, namespace, name) is not None:
                if generated:
                    meta["name"] = generated_name(prefix)
                    continue
                raise refusals.already_exists(rt, name)
            candidate = deep_copy(base) if allocating else base
            if allocating:
                allocate_service(candidate, None, self._network, self._taken, name)
            elif node:
                prepare_node(candidate, None, self._taken, name)
            if ctx.dry_run:
                return _candidate(rt.group, rt.plural, namespace, name, uid, candidate)
            command = self._command(
                ctx,
                rt,
                Verb.CREATE,
                namespace,
                name,
                uid,
                candidate,
                Precondition(must_not_exist=True),
            )
            outcome = await self._propose(ctx, command)
            if outcome.applied and outcome.object is not None:
                return outcome.object
            if generated and outcome.reason == "AlreadyExists":
                meta["name"] = generated_name(prefix)
                continue
            if outcome.reason == "Claimed" and (allocating or node):
                # Someone took the address or port we drew (or asked for) meanwhile; a pod
                # CIDR is not drawn here, so the next attempt refuses it as taken.
                continue
            raise self._refused(rt, name, outcome)
        raise refusals.already_exists(rt, meta["name"])

    # ------------------------------------------------------------------ update and patch

    async def update(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
    ) -> tuple[StoredObject, bool]:
        """PUT. Returns the stored object and whether it was created (create-on-update)."""
        obj = self._check_identity(rt, namespace, body, name)
        wanted = _metadata(obj).get("resourceVersion") or None
        strategy = strategy_for(rt.group, rt.plural)
        current = await self._current(rt, namespace, name)
        if current is None:
            if strategy.allow_create_on_update and subresource is None:
                _metadata(obj).pop("resourceVersion", None)
                return await self.create(ctx, rt, namespace, obj), True
            raise refusals.not_found(rt, name)

        def build(old: _Json) -> _Json:
            return self._replacement(rt, old, deep_copy(obj), subresource)

        stored = await self._rewrite(
            ctx, rt, namespace, name, current, wanted, build, subresource=subresource
        )
        return stored, False

    async def patch(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
    ) -> StoredObject:
        """PATCH with a JSON merge patch (RFC 7386), a JSON Patch (RFC 6902) or a strategic
        merge patch."""
        current = await self._current(rt, namespace, name)
        if current is None:
            raise refusals.not_found(rt, name)
        wanted: str | None = None
        if patch_type in ("merge", "strategic") and isinstance(patch, dict):
            patch_meta = patch.get("metadata")
            if isinstance(patch_meta, dict) and patch_meta.get("resourceVersion"):
                wanted = str(patch_meta["resourceVersion"])

        def build(old: _Json) -> _Json:
            if patch_type == "merge":
                patched = apply_merge_patch(deep_copy(old), patch)
            elif patch_type == "json":
                patched = apply_json_patch(deep_copy(old), patch)
            elif patch_type == "strategic":
                patched = strategic_merge(old, patch, definition_for(rt.api_version, rt.kind))
            else:
                raise BadRequestError(f"unsupported patch type {patch_type}")
            patched = self._check_identity(rt, namespace, patched, name)
            for field in ("uid", "namespace"):
                if _metadata(patched).get(field) != old["metadata"].get(field) and (
                    field != "namespace" or rt.namespaced
                ):
                    raise BadRequestError(f"metadata.{field} may not be changed by a patch")
            if patch_type == "json" and _metadata(patched).get("resourceVersion") != old[
                "metadata"
            ].get("resourceVersion"):
                raise refusals.conflict(rt, name)
            return self._replacement(rt, old, patched, subresource)

        return await self._rewrite(
            ctx,
            rt,
            namespace,
            name,
            current,
            wanted,
            build,
            verb=Verb.PATCH_RESULT,
            subresource=subresource,
        )

    async def apply(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        force: bool,
        subresource: str | None = None,
    ) -> tuple[StoredObject, bool]:
        """Server-side apply (contract §12); returns the object and whether it was created."""
        if not ctx.field_manager:
            raise InvalidError(
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
                kind="PatchOptions",
                group="meta.k8s.io",
                causes=[
                    StatusCause(
                        "FieldValueRequired",
                        "Required value: is required for apply patch",
                        "fieldManager",
                    )
                ],
            )
        if not isinstance(body, dict) or not body.get("apiVersion") or not body.get("kind"):
            raise BadRequestError("the applied configuration must set apiVersion and kind")
        applied = self._check_identity(rt, namespace, deep_copy(body), name)
        meta = _metadata(applied)
        if meta.get("managedFields"):
            raise BadRequestError(
                "metadata.managedFields must be nil: managed fields are set by the server"
            )
        wanted = meta.pop("resourceVersion", None) or None
        for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            meta.pop(field, None)
        if rt.subresource("status") is not None:
            if subresource == "status":
                applied = {
                    k: v
                    for k, v in applied.items()
                    if k in ("apiVersion", "kind", "metadata", "status")
                }
                applied["metadata"] = {
                    "name": name,
                    **({"namespace": namespace} if rt.namespaced else {}),
                }
            else:
                applied.pop("status", None)
        shape = root_shape(rt.definition)
        options = {
            "manager": _manager(ctx),
            "api_version": rt.api_version,
            "time": format_timestamp(ctx.now),
            "force": force,
            "subresource": subresource or "",
        }
        current = await self._current(rt, namespace, name)
        if current is None:
            if subresource is not None:
                raise refusals.not_found(rt, name)
            obj, entries = apply_intent(None, applied, shape, **options)  # type: ignore[arg-type]
            write_entries(obj, entries)
            return await self.create(ctx, rt, namespace, obj, applied=True), True

        def build(old: _Json) -> _Json:
            result, entries = apply_intent(old, applied, shape, **options)  # type: ignore[arg-type]
            result = self._replacement(rt, old, result, subresource)
            write_entries(result, entries)
            return result

        stored = await self._rewrite(
            ctx,
            rt,
            namespace,
            name,
            current,
            wanted,
            build,
            verb=Verb.PATCH_RESULT,
            subresource=subresource,
            applied=True,
        )
        return stored, False

    async def scale(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        body: Any = None,
        patch_type: str | None = None,
        patch: Any = None,
    ) -> StoredObject:
        """Write the ``scale`` subresource (a Scale body, or a patch of the current Scale);
        only the parent's ``spec.replicas`` changes. Returns the parent."""
        current = await self._current(rt, namespace, name)
        if current is None:
            raise refusals.not_found(rt, name)
        scale = (
            apply_scale_patch(scale_of(rt, current), patch_type, patch)
            if patch_type is not None
            else body
        )
        replicas = replicas_from_scale(rt, name, scale)
        wanted = (scale.get("metadata") or {}).get("resourceVersion") or None
        if patch_type is not None and wanted == str(current.resource_version):
            wanted = None  # the patched Scale carries the current version: not a precondition

        def build(old: _Json) -> _Json:
            return with_replicas(rt, name, old, replicas)

        return await self._rewrite(
            ctx,
            rt,
            namespace,
            name,
            current,
            wanted,
            build,
            verb=Verb.UPDATE if patch_type is None else Verb.PATCH_RESULT,
            subresource="scale",
        )

    async def bind(
        self, ctx: RequestContext, rt: ResourceType, namespace: str, binding: Any
    ) -> StoredObject:
        """``pods/binding``: assign a pod to a node, at most once (contract §13)."""
        if not isinstance(binding, dict):
            raise BadRequestError("the body must be a Binding")
        meta = binding.get("metadata") or {}
        target = binding.get("target") or {}
        name, node = meta.get("name"), target.get("name")
        if not isinstance(name, str) or not name:
            raise refusals.invalid(
                rt, "", [Cause(CauseReason.REQUIRED, "metadata.name", "Required value")]
            )
        if not isinstance(node, str) or not node or target.get("kind", "Node") != "Node":
            raise refusals.invalid(
                rt,
                name,
                [Cause(CauseReason.REQUIRED, "target.name", "Required value: a Node to bind to")],
            )
        current = await self._current(rt, namespace, name)
        if current is None:
            raise refusals.not_found(rt, name)
        if meta.get("uid") and meta["uid"] != current.uid:
            raise refusals.uid_conflict(rt, name, meta["uid"], current.uid)
        stamp = format_timestamp(ctx.now)

        def build(old: _Json) -> _Json:
            spec = old.get("spec") or {}
            assigned = spec.get("nodeName")
            if assigned or old["metadata"].get("deletionTimestamp"):
                reason = (
                    f'pod {name} is already assigned to node "{assigned}"'
                    if assigned
                    else f"pod {name} is being deleted, cannot be assigned to a host"
                )
                raise ConflictError(
                    f'Operation cannot be fulfilled on pods/binding "{name}": {reason}',
                    name=name,
                    kind="pods/binding",
                )
            new = deep_copy(old)
            new["spec"]["nodeName"] = node
            annotations = meta.get("annotations")
            if isinstance(annotations, dict) and annotations:
                new["metadata"]["annotations"] = {
                    **(new["metadata"].get("annotations") or {}),
                    **annotations,
                }
            status = new.setdefault("status", {})
            status["conditions"] = _scheduled(status.get("conditions"), stamp)
            return new

        return await self._rewrite(
            ctx,
            rt,
            namespace,
            name,
            current,
            None,
            build,
            verb=Verb.PATCH_RESULT,
            subresource="binding",
        )

    def _replacement(
        self, rt: ResourceType, old: _Json, new: _Json, subresource: str | None
    ) -> _Json:
        """Keep what the server owns: identity, timestamps, generation, and the part of the
        object the other endpoint (main resource vs status) is responsible for."""
        strategy = strategy_for(rt.group, rt.plural)
        meta, old_meta = _metadata(new), old["metadata"]
        if meta.get("uid") not in (None, "", old_meta.get("uid")):
            raise refusals.invalid(
                rt,
                old_meta.get("name", ""),
                [
                    Cause(
                        CauseReason.INVALID,
                        "metadata.uid",
                        f'Invalid value: "{meta.get("uid")}": field is immutable',
                    )
                ],
            )
        for field in _SERVER_META:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        has_status = rt.subresource("status") is not None
        if subresource == "finalize":
            # namespaces/finalize changes spec.finalizers only.
            finalizers = (new.get("spec") or {}).get("finalizers") or []
            new = deep_copy(old)
            new.setdefault("spec", {})["finalizers"] = finalizers
            return new
        if subresource == "status":
            # The status endpoint changes status only; everything else stays as stored.
            status = new.get("status")
            new = deep_copy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            return new
        if has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if old.get("kind") == "Namespace":
            # Only namespaces/finalize may change a namespace's spec.finalizers.
            spec = new.setdefault("spec", {})
            if isinstance(spec, dict):
                spec["finalizers"] = old.get("spec", {}).get("finalizers", [])
        if old.get("kind") == "Service":
            # An update that omits the allocated addresses keeps them (they are immutable).
            spec, old_spec = new.get("spec"), old.get("spec") or {}
            if isinstance(spec, dict):
                for field in ("clusterIP", "clusterIPs"):
                    if not spec.get(field) and old_spec.get(field):
                        spec[field] = old_spec[field]
        if strategy.tracks_generation:
            generation = old_meta.get("generation", 1)
            meta["generation"] = generation + 1 if _desired_state_changed(old, new) else generation
        else:
            meta.pop("generation", None)
        old_finalizers = set(old_meta.get("finalizers") or ())
        if old_meta.get("deletionTimestamp") and set(meta.get("finalizers") or ()) - old_finalizers:
            raise ForbiddenError(
                f'{rt.qualified_name} "{old_meta.get("name", "")}" is forbidden: no new '
                "finalizers can be added if the object is being deleted",
                name=old_meta.get("name", ""),
                group=rt.group,
                kind=rt.plural,
            )
        return new

    async def _rewrite(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        current: StoredObject,
        wanted: str | None,
        build: Callable[[_Json], _Json],
        *,
        verb: Verb = Verb.UPDATE,
        subresource: str | None = None,
        applied: bool = False,
    ) -> StoredObject:
        """Plan, admit and propose a change to an existing object; re-plan lost races.

        ``applied`` means ``build`` is server-side apply and wrote the managedFields itself.
        """
        for _attempt in range(WRITE_ATTEMPTS):
            if wanted is not None and wanted != str(current.resource_version):
                raise refusals.conflict(rt, name)
            old = current.object
            candidate = build(old)
            if rt.group == "" and rt.plural == "services":
                allocate_service(candidate, old, self._network, self._taken, name)
            elif rt.group == "" and rt.plural == "nodes":
                prepare_node(candidate, old, self._taken, name)
            # A binding sets spec.nodeName, which a pod update may not change: upstream's
            # binding path checks the pod as a whole, not as an update of its spec.
            self._admit(ctx, rt, candidate, None if subresource == "binding" else old, subresource)
            if not applied and subresource != "binding":
                # Upstream's binding writes storage directly: no managedFields entry.
                _track(ctx, rt, old, candidate, subresource)
            if _same_object(old, candidate):
                return current
            if ctx.dry_run:
                return _candidate(
                    rt.group,
                    rt.plural,
                    namespace,
                    name,
                    current.uid,
                    candidate,
                    current.resource_version,
                )
            removal = bool(candidate["metadata"].get("deletionTimestamp")) and _terminal_finalizers(
                candidate
            )
            precondition = Precondition(resource_version=current.resource_version, uid=current.uid)
            candidate["metadata"].pop("resourceVersion", None)
            command = self._command(
                ctx,
                rt,
                Verb.FINALIZE if removal else verb,
                namespace,
                name,
                current.uid,
                None if removal else candidate,
                precondition,
            )
            outcome = await self._propose(ctx, command)
            if outcome.applied and outcome.object is not None:
                return outcome.object
            if outcome.reason == "NotFound":
                raise refusals.not_found(rt, name)
            lost_race = outcome.reason in ("Conflict", "UIDMismatch", "Claimed")
            if not lost_race or (wanted is not None and outcome.reason != "Claimed"):
                raise self._refused(rt, name, outcome)
            fresh = await self._current(rt, namespace, name)
            if fresh is None:
                raise refusals.not_found(rt, name)
            current = fresh
        raise refusals.conflict(rt, name)

    # ------------------------------------------------------------------ delete

    async def delete(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: DeleteOptions,
    ) -> DeleteResult:
        strategy = strategy_for(rt.group, rt.plural)
        if name in strategy.protected_names:
            raise ForbiddenError(
                f'{rt.qualified_name} "{name}" is forbidden: this namespace may not be deleted',
                name=name,
                group=rt.group,
                kind=rt.plural,
            )
        for _attempt in range(WRITE_ATTEMPTS):
            current = await self._current(rt, namespace, name)
            if current is None:
                raise refusals.not_found(rt, name)
            self._check_delete_preconditions(rt, name, current, options)
            old = current.object
            lingering = self._lingering(ctx, rt, strategy, old, options)
            if lingering is None:
                verb, obj = Verb.DELETE, None
            elif _same_object(old, lingering):
                return DeleteResult(current, None, removed=False)
            else:
                verb, obj = Verb.DELETE, lingering
                obj["metadata"].pop("resourceVersion", None)
            if ctx.dry_run:
                shown = (
                    current
                    if obj is None
                    else _candidate(
                        rt.group,
                        rt.plural,
                        namespace,
                        name,
                        current.uid,
                        obj,
                        current.resource_version,
                    )
                )
                return self._delete_result(rt, strategy, shown, removed=obj is None)
            command = self._command(
                ctx,
                rt,
                verb,
                namespace,
                name,
                current.uid,
                obj,
                Precondition(resource_version=current.resource_version, uid=current.uid),
            )
            outcome = await self._propose(ctx, command)
            if outcome.applied and outcome.object is not None:
                return self._delete_result(rt, strategy, outcome.object, removed=obj is None)
            if outcome.reason == "NotFound":
                raise refusals.not_found(rt, name)
            if outcome.reason not in ("Conflict", "UIDMismatch"):
                raise self._refused(rt, name, outcome)
        raise refusals.conflict(rt, name)

    @staticmethod
    def _check_delete_preconditions(
        rt: ResourceType, name: str, current: StoredObject, options: DeleteOptions
    ) -> None:
        if options.precondition_uid and options.precondition_uid != current.uid:
            raise refusals.uid_conflict(rt, name, options.precondition_uid, current.uid)
        if options.precondition_resource_version and options.precondition_resource_version != str(
            current.resource_version
        ):
            raise ConflictError(
                f'Operation cannot be fulfilled on {rt.qualified_name} "{name}": Precondition '
                f"failed: ResourceVersion in precondition: "
                f"{options.precondition_resource_version}, ResourceVersion in object meta: "
                f"{current.resource_version}",
                name=name,
                group=rt.group,
                kind=rt.plural,
            )

    @staticmethod
    def _lingering(
        ctx: RequestContext,
        rt: ResourceType,
        strategy: Strategy,
        old: _Json,
        options: DeleteOptions,
    ) -> _Json | None:
        """The object as it stays after this DELETE, or None when it is removed now."""
        obj = deep_copy(old)
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.propagation_policy
        if policy is None and options.orphan_dependents is not None:
            policy = "Orphan" if options.orphan_dependents else "Background"
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        graceful = False
        grace = options.grace_period_seconds
        if strategy.graceful_delete and grace != 0:
            spec = obj.get("spec") or {}
            phase = (obj.get("status") or {}).get("phase")
            if spec.get("nodeName") and phase not in ("Succeeded", "Failed"):
                graceful = True
                if grace is None:
                    grace = spec.get("terminationGracePeriodSeconds", 30)
        namespace_held = rt.group == "" and rt.plural == "namespaces"
        if meta.get("deletionTimestamp"):
            if grace == 0 and not finalizers and not namespace_held:
                return None  # the node agent's final delete, or a forced one
            # Already terminating: a second delete changes nothing (except a shorter grace).
            if (
                graceful
                and grace is not None
                and grace < meta.get("deletionGracePeriodSeconds", grace)
            ):
                meta["deletionGracePeriodSeconds"] = grace
            if finalizers != list(meta.get("finalizers") or []) and policy in (
                "Orphan",
                "Foreground",
            ):
                meta["finalizers"] = finalizers
            return obj
        if not finalizers and not graceful and not namespace_held:
            return None
        grace = grace if graceful and grace is not None else 0
        meta["deletionTimestamp"] = format_timestamp(ctx.now + timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            meta["finalizers"] = finalizers
        if strategy.tracks_generation:
            meta["generation"] = meta.get("generation", 1) + 1
        if namespace_held:
            obj.setdefault("status", {})["phase"] = "Terminating"
        return obj

    @staticmethod
    def _delete_result(
        rt: ResourceType, strategy: Strategy, stored: StoredObject, *, removed: bool
    ) -> DeleteResult:
        if not removed or strategy.return_deleted_object:
            return DeleteResult(stored, None, removed=removed)
        details: _Json = {"name": stored.name, "kind": rt.plural, "uid": stored.uid}
        if rt.group:
            details["group"] = rt.group
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }
        return DeleteResult(stored, status, removed=True)
