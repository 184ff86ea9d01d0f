"""``treadle.ApiClient`` itself: its settings, and every answer the API could give it.

The API's error shape is mapped back to the classes :class:`treadle.Client` raises, with
the server's message; anything else (a 500, a proxy's page, no answer at all) is exercised
with ``httpx.MockTransport``, and so are the token and the bodies each call sends.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

import treadle
from treadle.apiclient import ApiClient, ApiError
from treadle.common.errors import (
    ConfigurationError,
    ConflictError,
    DefinitionError,
    Forbidden,
    LimitExceeded,
    NotFound,
    ParameterError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from treadle.common.settings import Settings

from .test_api_client import raised

# -- the client itself ---------------------------------------------------------------------


def test_it_is_exported_next_to_client_and_takes_its_settings(api: TestClient) -> None:
    assert treadle.ApiClient is ApiClient
    settings = Settings(api_url="http://testserver/api/v1/", api_token=SecretStr("trd_secret"))
    with ApiClient(settings=settings, transport=api) as from_settings:
        assert from_settings.base_url == "http://testserver"
        assert "trd_secret" not in repr(from_settings)
        assert "trd_secret" not in repr(settings) + str(settings.model_dump())
        assert isinstance(raised(lambda: from_settings.get("r-1")), Unauthenticated)
    with pytest.raises(ConfigurationError, match="TREADLE_API_URL"):
        ApiClient(settings=Settings(), token="x")


def _answering(status: int, body: Any, seen: list[httpx.Request] | None = None) -> ApiClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return ApiClient("http://api.example:8080", "trd_abc", transport=httpx.MockTransport(handle))


def _shaped(type_: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "details": details}}


@pytest.mark.parametrize(
    ("status", "type_", "details", "kind"),
    [
        (401, "unauthenticated", None, Unauthenticated),
        (403, "forbidden", None, Forbidden),
        (404, "not_found", None, NotFound),
        (409, "conflict", None, ConflictError),
        (422, "invalid_parameters", {"subject": "answer", "problems": ["a", "b"]}, ParameterError),
        (
            422,
            "validation_error",
            [{"loc": ["query"], "message": "m", "type": "t"}],
            ParameterError,
        ),
        (422, "limit_exceeded", None, LimitExceeded),
        (
            422,
            "invalid_definition",
            [{"file": "f.yaml", "line": 2, "column": 3, "message": "x"}],
            DefinitionError,
        ),
        (503, "service_unavailable", None, ServiceUnavailable),
        (404, "gone_elsewhere", None, NotFound),  # a type this client does not know: by status
        (500, "internal_error", None, ApiError),
        (405, "method_not_allowed", None, ApiError),
    ],
)
def test_each_error_shape_maps_to_the_class_the_client_raises_with_the_servers_message(
    status: int, type_: str, details: Any, kind: type[BaseException]
) -> None:
    with _answering(status, _shaped(type_, "what the server said", details)) as api_client:
        error = raised(lambda: api_client.get("r-1"))
    assert type(error) is kind
    assert str(error) == "what the server said"
    if isinstance(error, ParameterError) and type_ == "invalid_parameters":
        assert (error.subject, error.problems) == ("answer", ("a", "b"))
    if isinstance(error, DefinitionError):
        assert [str(issue) for issue in error.issues] == ["f.yaml:2:3: x"]
    if isinstance(error, ApiError):
        assert (error.status, error.type) == (status, type_)


def test_a_rate_limit_says_when_to_try_again() -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        body = _shaped("too_many_requests", "token:ci made more than 5 requests this minute")
        return httpx.Response(429, json=body, headers={"Retry-After": "17"})

    with ApiClient("http://api", "t", transport=httpx.MockTransport(limited)) as api_client:
        error = raised(lambda: api_client.get("r-1"))
    assert isinstance(error, TooManyRequests)
    assert error.retry_after == 17
    assert str(error) == "token:ci made more than 5 requests this minute"


def test_answers_that_are_not_the_apis_and_no_answer_at_all() -> None:
    with _answering(502, "<html>Bad Gateway</html>") as behind_a_proxy:
        error = raised(lambda: behind_a_proxy.get("r-1"))
    assert isinstance(error, ServiceUnavailable)
    assert "GET /api/v1/runs/r-1 answered 502: <html>Bad Gateway</html>" in str(error)
    with _answering(418, "teapot") as odd:
        error = raised(lambda: odd.get("r-1"))
    assert isinstance(error, ApiError)
    assert error.status == 418

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with ApiClient("http://down:1", "t", transport=httpx.MockTransport(refuse)) as down:
        error = raised(down.list_runs)
    assert isinstance(error, ServiceUnavailable)
    assert str(error) == "the API at http://down:1 is unavailable: Connection refused"


def test_requests_carry_the_token_and_the_documented_bodies() -> None:
    seen: list[httpx.Request] = []
    document = {"id": "r-1", "workflow": "w", "status": "running"}
    with _answering(201, document, seen) as api_client:
        assert api_client.start("pack.flow", {"a": 1}, idempotency_key="k-1", version=2) == "r-1"
        api_client.pause("r-1", "why")
        api_client.resume("r-1")
    start, pause, resume = seen
    assert start.headers["Authorization"] == "Bearer trd_abc"
    assert start.headers["Idempotency-Key"] == "k-1"
    assert (start.method, start.url.path) == ("POST", "/api/v1/workflows/pack.flow/execute")
    assert json.loads(start.content) == {"parameters": {"a": 1}, "version": 2}
    assert (pause.url.path, json.loads(pause.content)) == (
        "/api/v1/runs/r-1/pause",
        {"reason": "why"},
    )
    assert resume.content == b""
