"""Health, readiness and version endpoints (open to anonymous callers).

``/readyz`` is ready only when the log is open and healthy, the projections have applied
everything committed, and the server is not shutting down; ``?verbose`` lists each check as
upstream does (``[+]name ok``).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable

from attrs import frozen
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from engenho import __version__
from engenho.api.resources import json_response
from engenho.schema import KUBERNETES_VERSION

__all__ = ["Check", "Health", "version_info"]


@frozen
class Check:
    name: str
    passed: Callable[[], bool]


def version_info() -> dict[str, str]:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"{KUBERNETES_VERSION}-engenho.{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": sys.implementation.name,
        "platform": f"{platform.system().lower()}/{platform.machine()}",
    }


class Health:
    def __init__(self, live: list[Check], ready: list[Check]) -> None:
        self._live = live
        self._ready = ready

    @staticmethod
    def _report(request: Request, checks: list[Check]) -> Response:
        results = [(check.name, check.passed()) for check in checks]
        healthy = all(ok for _, ok in results)
        if "verbose" in request.query_params:
            lines = [
                f"[{'+' if ok else '-'}]{name} {'ok' if ok else 'failed'}" for name, ok in results
            ]
            lines.append("healthz check passed" if healthy else "healthz check failed")
            body = "\n".join(lines) + "\n"
        else:
            body = "ok" if healthy else "\n".join(f"[-]{n} failed" for n, ok in results if not ok)
        return PlainTextResponse(body, status_code=200 if healthy else 500)

    async def livez(self, request: Request) -> Response:
        return self._report(request, self._live)

    async def readyz(self, request: Request) -> Response:
        return self._report(request, self._live + self._ready)

    async def version(self, request: Request) -> Response:
        return json_response(version_info())
