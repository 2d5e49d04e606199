"""Status bodies become exceptions: one class per reason, the HTTP code when the reason is
missing or unknown, causes and Retry-After carried; bodies that are not a Status get
client-go's generic wording."""

from __future__ import annotations

import pytest

from engenho import client as kube
from engenho.client import errors


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", kube.BadRequestError),
        (401, "Unauthorized", kube.UnauthorizedError),
        (403, "Forbidden", kube.ForbiddenError),
        (404, "NotFound", kube.NotFoundError),
        (405, "MethodNotAllowed", kube.MethodNotAllowedError),
        (406, "NotAcceptable", kube.NotAcceptableError),
        (409, "AlreadyExists", kube.AlreadyExistsError),
        (409, "Conflict", kube.ConflictError),
        (410, "Gone", kube.GoneError),
        (410, "Expired", kube.ExpiredError),
        (413, "RequestEntityTooLarge", kube.RequestEntityTooLargeError),
        (415, "UnsupportedMediaType", kube.UnsupportedMediaTypeError),
        (422, "Invalid", kube.InvalidError),
        (429, "TooManyRequests", kube.TooManyRequestsError),
        (500, "InternalError", kube.InternalError),
        (500, "ServerTimeout", kube.ServerTimeoutError),
        (503, "ServiceUnavailable", kube.ServiceUnavailableError),
        (504, "Timeout", kube.GatewayTimeoutError),
    ],
)
def test_one_class_per_reason(code: int, reason: str, cls: type[kube.ApiError]) -> None:
    status = {"kind": "Status", "code": code, "reason": reason, "message": "m"}
    error = kube.error_for_status(status)
    assert type(error) is cls and error.code == code and error.reason == reason
    assert error.status == status and str(error) == f"({reason}) m"
    # Without a reason the code decides: 409 is a Conflict, 410 a Gone, 500 an InternalError.
    by_code = kube.error_for_status({"code": code})
    shared = {409: kube.ConflictError, 410: kube.GoneError, 500: kube.InternalError}
    assert type(by_code) is shared.get(code, cls) and by_code.code == code


def test_expired_is_a_gone_and_unknown_codes_stay_generic() -> None:
    assert issubclass(kube.ExpiredError, kube.GoneError)
    teapot = kube.error_for_status({"code": 418, "reason": "Teapot", "message": "short"})
    assert type(teapot) is kube.ApiError and teapot.code == 418


def test_causes_and_retry_after() -> None:
    invalid = kube.error_for_status(
        {
            "code": 422,
            "reason": "Invalid",
            "message": 'Pod "x" is invalid: spec.containers[0].image: Required value',
            "details": {
                "name": "x",
                "kind": "Pod",
                "causes": [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": "spec.containers[0].image",
                    },
                    {"type": "FieldValueInvalid", "message": "Invalid value"},
                ],
            },
        }
    )
    assert isinstance(invalid, kube.InvalidError)
    assert invalid.causes == (
        kube.StatusCause("FieldValueRequired", "Required value", "spec.containers[0].image"),
        kube.StatusCause("FieldValueInvalid", "Invalid value"),
    )
    busy = kube.error_for_status(
        {"code": 429, "reason": "TooManyRequests", "details": {"retryAfterSeconds": 3}}
    )
    assert busy.retry_after == 3.0
    header_wins = kube.error_for_status(
        {"code": 429, "details": {"retryAfterSeconds": 3}}, retry_after=7
    )
    assert header_wins.retry_after == 7


def test_bodies_that_are_not_a_status() -> None:
    proxy = errors.status_for_response(502, b"<html>bad gateway</html>")
    assert proxy["code"] == 502 and "<html>bad gateway</html>" in proxy["message"]
    unavailable = errors.status_for_response(503, b"")
    assert unavailable["reason"] == "ServiceUnavailable"
    assert unavailable["message"] == "the server is currently unable to handle the request"
    real = errors.status_for_response(404, b'{"kind":"Status","reason":"NotFound","message":"x"}')
    assert real == {"kind": "Status", "reason": "NotFound", "message": "x", "code": 404}
