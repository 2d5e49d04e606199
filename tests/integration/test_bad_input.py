"""Bad input over HTTPS: every refusal is a metav1.Status with upstream's code and reason, and
the log does not grow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .server import ServerProcess

pytestmark = pytest.mark.slow

CM = "/api/v1/namespaces/default/configmaps"


def _configmap(name: str = "ok", **extra: Any) -> bytes:
    return json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}
    ).encode()


CASES = [
    # (id, method, path, body, content type, token, code, reason)
    (
        "malformed-json",
        "POST",
        CM,
        b'{"apiVersion": "v1", "kind": ',
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
    (
        "malformed-yaml",
        "POST",
        CM,
        b"apiVersion: v1\nkind: [ConfigMap\n",
        "application/yaml",
        "admin",
        400,
        "BadRequest",
    ),
    ("not-an-object", "POST", CM, b"[1, 2, 3]", "application/json", "admin", 400, "BadRequest"),
    (
        "wrong-kind",
        "POST",
        CM,
        json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}).encode(),
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
    (
        "wrong-api-version",
        "POST",
        CM,
        json.dumps(
            {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "s"}}
        ).encode(),
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
    (
        "too-large",
        "POST",
        CM,
        _configmap("big", data={"blob": "x" * (3 * 1024 * 1024)}),
        "application/json",
        "admin",
        413,
        "RequestEntityTooLarge",
    ),
    (
        "invalid-name",
        "POST",
        CM,
        _configmap("Not_Valid"),
        "application/json",
        "admin",
        422,
        "Invalid",
    ),
    (
        "missing-name",
        "POST",
        CM,
        json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}).encode(),
        "application/json",
        "admin",
        422,
        "Invalid",
    ),
    (
        "missing-namespace",
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        _configmap(),
        "application/json",
        "admin",
        404,
        "NotFound",
    ),
    (
        "namespace-mismatch",
        "POST",
        CM,
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "m", "namespace": "kube-system"},
            }
        ).encode(),
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
    (
        "unsupported-media",
        "POST",
        CM,
        _configmap(),
        "text/plain",
        "admin",
        415,
        "UnsupportedMediaType",
    ),
    (
        "type-error",
        "POST",
        CM,
        _configmap("typed", data={"n": 5}),
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
    (
        "strict-unknown-field",
        "POST",
        CM + "?fieldValidation=Strict",
        _configmap("strict", spec={"x": 1}),
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
    ("unauthenticated", "POST", CM, _configmap(), "application/json", None, 401, "Unauthorized"),
    (
        "bad-token",
        "POST",
        CM,
        _configmap(),
        "application/json",
        "not-a-real-token",
        401,
        "Unauthorized",
    ),
    (
        "unknown-resource",
        "POST",
        "/api/v1/namespaces/default/widgets",
        _configmap(),
        "application/json",
        "admin",
        404,
        "NotFound",
    ),
    (
        "method-not-allowed",
        "PUT",
        CM,
        _configmap(),
        "application/json",
        "admin",
        405,
        "MethodNotAllowed",
    ),
    (
        "name-mismatch",
        "PUT",
        CM + "/one",
        _configmap("two"),
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
    (
        "update-missing",
        "PUT",
        CM + "/ghost",
        _configmap("ghost"),
        "application/json",
        "admin",
        404,
        "NotFound",
    ),
    (
        "bad-patch-type",
        "PATCH",
        CM + "/ghost",
        b"{}",
        "application/json",
        "admin",
        415,
        "UnsupportedMediaType",
    ),
    (
        "bad-dry-run",
        "POST",
        CM + "?dryRun=Some",
        _configmap(),
        "application/json",
        "admin",
        400,
        "BadRequest",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "token", "code", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_refused_with_status_and_nothing_logged(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
    token: str | None,
    code: int,
    reason: str,
) -> None:
    before = server.log_head()
    status, payload, headers = server.request(
        method, path, body, content_type=content_type, token=token
    )
    assert status == code, payload
    assert isinstance(payload, dict) and payload["kind"] == "Status", payload
    assert payload["status"] == "Failure" and payload["code"] == code
    assert payload["reason"] == reason, payload
    assert headers.get("content-type", "").startswith("application/json")
    assert server.log_head() == before, "a refused request must not reach the log"


def test_invalid_lists_every_cause(server: ServerProcess) -> None:
    body = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "broken"},
            "spec": {"containers": [{"name": "c"}, {"image": "busybox"}]},
        }
    ).encode()
    status, payload, _ = server.request("POST", "/api/v1/namespaces/default/pods", body)
    assert status == 422 and isinstance(payload, dict)
    fields = {cause["field"] for cause in payload["details"]["causes"]}
    assert {"spec.containers[0].image", "spec.containers[1].name"} <= fields
    assert payload["details"]["kind"] == "Pod" and payload["details"]["name"] == "broken"
    assert payload["message"].startswith('Pod "broken" is invalid: [')


def test_public_endpoints_need_no_credentials(server: ServerProcess) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        status, _, _ = server.request("GET", path, token=None)
        assert status == 200, path
    status, payload, _ = server.request("GET", "/api/v1/namespaces", token=None)
    assert status == 401 and isinstance(payload, dict) and payload["reason"] == "Unauthorized"


def test_dry_run_persists_nothing(server: ServerProcess) -> None:
    before = server.log_head()
    status, payload, _ = server.request("POST", CM + "?dryRun=All", _configmap("dry"))
    assert status == 201 and isinstance(payload, dict) and payload["metadata"]["name"] == "dry"
    assert server.log_head() == before
    status, _, _ = server.request("GET", CM + "/dry")
    assert status == 404


def test_duplicate_fields_by_field_validation(server: ServerProcess) -> None:
    body = (
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},"data":{}}'
    )
    before = server.log_head()
    status, payload, _ = server.request("POST", CM + "?fieldValidation=Strict", body)
    assert status == 400 and isinstance(payload, dict)
    assert 'strict decoding error: duplicate field "metadata.name"' in payload["message"]
    assert server.log_head() == before
    status, payload, headers = server.request("POST", CM + "?fieldValidation=Warn", body)
    assert status == 201
    assert headers["warning"] == '299 - "duplicate field \\"metadata.name\\""'
