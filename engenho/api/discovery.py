"""Discovery documents, built from the same catalogue that routes requests (contract §1).

Legacy discovery (``/api``, ``/apis``, ``/apis/{group}``, ``/api/v1``, ``/apis/{g}/{v}``) and
aggregated discovery (``APIGroupDiscoveryList``, KEP-3352) when the client asks for it, with
the matching Content-Type, since clients tell the formats apart by that header alone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engenho.api.negotiation import Response as Wanted
from engenho.api.negotiation import wants
from engenho.api.resources import json_response, status_response
from engenho.api.routing import NOT_FOUND_MESSAGE
from engenho.registry import NotFoundError, StatusError
from engenho.schema import Catalogue, ResourceType

__all__ = ["DISCOVERY_MEDIA_TYPE", "Discovery", "version_priority"]

DISCOVERY_MEDIA_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?\Z")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version order: GA > beta > alpha, higher numbers first; others last."""
    match = _VERSION.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


class Discovery:
    def __init__(self, catalogue: Catalogue, server_address: str) -> None:
        self.catalogue = catalogue
        self.server_address = server_address
        versions: dict[str, set[str]] = defaultdict(set)
        self._by_gv: dict[tuple[str, str], list[ResourceType]] = defaultdict(list)
        for rt in catalogue:
            versions[rt.group].add(rt.version)
            self._by_gv[(rt.group, rt.version)].append(rt)
        self._versions = {g: sorted(v, key=version_priority) for g, v in versions.items()}
        self._groups = sorted(g for g in self._versions if g)

    # ------------------------------------------------------------------ documents

    def _group(self, name: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in self._versions[name]]
        return {"name": name, "versions": versions, "preferredVersion": versions[0]}

    def api_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": self._versions.get("", []),
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}
            ],
        }

    def group_list(self) -> dict[str, Any]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group(g) for g in self._groups],
        }

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        resources = self._by_gv.get((group, version))
        if resources is None:
            return None
        rows: list[dict[str, Any]] = []
        for rt in sorted(resources, key=lambda r: r.plural):
            rows.extend(rt.api_resources())
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": rows,
        }

    def _aggregated_resource(self, rt: ResourceType) -> dict[str, Any]:
        row: dict[str, Any] = {
            "resource": rt.plural,
            "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "scope": "Namespaced" if rt.namespaced else "Cluster",
            "singularResource": rt.singular,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            row["shortNames"] = list(rt.short_names)
        if rt.categories:
            row["categories"] = list(rt.categories)
        subresources = [
            {
                "subresource": sub.name,
                "responseKind": {
                    "group": sub.kind.group,
                    "version": sub.kind.version,
                    "kind": sub.kind.kind,
                },
                "verbs": list(sub.verbs),
            }
            for sub in rt.subresources
        ]
        if subresources:
            row["subresources"] = subresources
        return row

    def _aggregated_group(self, group: str) -> dict[str, Any]:
        versions = []
        for version in self._versions[group]:
            resources = sorted(self._by_gv[(group, version)], key=lambda r: r.plural)
            versions.append(
                {
                    "version": version,
                    "freshness": "Current",
                    "resources": [self._aggregated_resource(rt) for rt in resources],
                }
            )
        return {"metadata": {"name": group}, "versions": versions}

    def aggregated(self, groups: list[str]) -> dict[str, Any]:
        items = [self._aggregated_group(group) for group in groups]
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }

    # ------------------------------------------------------------------ endpoints

    async def api(self, request: Request) -> Response:
        return self._root(request, self.api_versions(), [""])

    async def apis(self, request: Request) -> Response:
        return self._root(request, self.group_list(), self._groups)

    def _root(self, request: Request, legacy: dict[str, Any], groups: list[str]) -> Response:
        try:
            representation = wants(request.headers.get("accept"), discovery=True)
        except StatusError as exc:
            return status_response(exc)
        if representation == Wanted.DISCOVERY:
            return Response(
                json_response(self.aggregated(groups)).body, media_type=DISCOVERY_MEDIA_TYPE
            )
        return json_response(legacy)

    async def group(self, request: Request) -> Response:
        name = request.path_params["group"]
        if name not in self._versions or not name:
            return status_response(NotFoundError(NOT_FOUND_MESSAGE))
        return json_response({"kind": "APIGroup", "apiVersion": "v1", **self._group(name)})

    async def core_resources(self, request: Request) -> Response:
        return self._resources("", "v1")

    async def group_resources(self, request: Request) -> Response:
        return self._resources(request.path_params["group"], request.path_params["version"])

    def _resources(self, group: str, version: str) -> Response:
        document = self.resource_list(group, version)
        if document is None:
            return status_response(NotFoundError(NOT_FOUND_MESSAGE))
        return json_response(document)
