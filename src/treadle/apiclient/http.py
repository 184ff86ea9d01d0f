"""How :class:`treadle.ApiClient` talks HTTP: one request at a time, errors as Treadle's.

The API answers every failure in one shape, ``{"error": {"type", "message", "details"}}``
(``docs/api.md``). This module turns such an answer back into the exception
:class:`treadle.Client` raises for the same failure, with the server's message:
``not_found`` is :class:`~treadle.common.errors.NotFound`, ``conflict``
:class:`~treadle.common.errors.ConflictError`, ``invalid_parameters`` and
``validation_error`` :class:`~treadle.common.errors.ParameterError`, a rate limit (429)
:class:`~treadle.common.errors.TooManyRequests` with its ``Retry-After``, and so on. An
answer the table does not know (a 500, a 405, a proxy's HTML page) is an
:class:`ApiError` carrying its status. Failing to reach the API at all (refused, timed
out, reset) is :class:`~treadle.common.errors.ServiceUnavailable`, as a database that
cannot be reached is for the database client.

Nothing here imports the API server or its web framework: only httpx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from treadle.common.errors import (
    ConflictError,
    DefinitionError,
    Forbidden,
    LimitExceeded,
    NotFound,
    ParameterError,
    ServiceUnavailable,
    TooManyRequests,
    TreadleError,
    Unauthenticated,
)
from treadle.common.sandbox_report import SandboxRefusal, SandboxReport
from treadle.common.source import Issue, Loc

__all__ = ["API_PREFIX", "ApiError", "HttpSession", "error_of", "segment"]

log = logging.getLogger("treadle.client")

#: Where the API's routes are, under the base URL.
API_PREFIX = "/api/v1"


class ApiError(TreadleError):
    """An answer of the API that no other Treadle error stands for (a 500, a 405...).

    Carries the HTTP ``status``, the error ``type`` (``internal_error``...; ``http_error``
    when the body did not have the API's error shape) and its ``details``.
    """

    def __init__(self, message: str, *, status: int, type_: str, details: Any = None) -> None:
        self.status = status
        self.type = type_
        self.details = details
        super().__init__(message)


def segment(value: str) -> str:
    """``value`` as one path segment (a ref, an id, a task or key name), escaped."""
    return quote(value, safe="")


def _kept(error: TreadleError, message: str) -> TreadleError:
    """``error``, whose ``str()`` is the server's ``message`` whatever its class builds."""
    error.args = (message,)
    return error


def _parameter_error(message: str, details: Any) -> TreadleError:
    if isinstance(details, Mapping) and isinstance(details.get("problems"), list):
        problems = [str(problem) for problem in details["problems"]]
        subject = str(details.get("subject") or "parameters")
        return _kept(ParameterError(problems, subject=subject), message)
    return _kept(ParameterError([message]), message)


def _validation_error(message: str, details: Any) -> TreadleError:
    problems = [message]
    if isinstance(details, list) and details:
        problems = [
            str(problem.get("message", problem)) if isinstance(problem, Mapping) else str(problem)
            for problem in details
        ]
    return _kept(ParameterError(problems, subject="request"), message)


def _definition_error(message: str, details: Any) -> TreadleError:
    issues: list[Issue] = []
    for problem in details if isinstance(details, list) else []:
        if isinstance(problem, Mapping):
            where = Loc(
                str(problem.get("file") or "<definition>"),
                int(problem.get("line") or 0),
                int(problem.get("column") or 0),
            )
            issues.append(Issue(where, str(problem.get("message", ""))))
    if not issues:
        issues.append(Issue(Loc("<definition>"), message))
    return _kept(DefinitionError(issues), message)


def _sandbox_refusal(message: str, details: Any) -> TreadleError:
    try:
        report = SandboxReport.model_validate(details)
    except ValueError:
        report = SandboxReport.of(())
    return _kept(SandboxRefusal(report, workflow=""), message)


def _plain(kind: Callable[[str], TreadleError]) -> Callable[[str, Any], TreadleError]:
    return lambda message, _details: kind(message)


#: Each error ``type`` of the API (docs/api.md) and the error the client raises for it.
_BY_TYPE: Mapping[str, Callable[[str, Any], TreadleError]] = {
    "unauthenticated": _plain(Unauthenticated),
    "forbidden": _plain(Forbidden),
    "not_found": _plain(NotFound),
    "conflict": _plain(ConflictError),
    "invalid_parameters": _parameter_error,
    "sandbox_violation": _sandbox_refusal,
    "validation_error": _validation_error,
    "invalid_definition": _definition_error,
    "limit_exceeded": _plain(LimitExceeded),
    "service_unavailable": _plain(ServiceUnavailable),
}

#: The same by status, for an error type this client does not know (a newer server).
_BY_STATUS: Mapping[int, Callable[[str, Any], TreadleError]] = {
    401: _plain(Unauthenticated),
    403: _plain(Forbidden),
    404: _plain(NotFound),
    409: _plain(ConflictError),
    502: _plain(ServiceUnavailable),
    503: _plain(ServiceUnavailable),
    504: _plain(ServiceUnavailable),
}


def _retry_after(response: httpx.Response) -> int:
    """The seconds ``Retry-After`` asks for (1 when it says nothing usable)."""
    try:
        return max(1, int(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1


def error_of(response: httpx.Response) -> TreadleError:
    """The exception a non-2xx ``response`` stands for, with the server's message."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        type_ = str(error.get("type") or "http_error")
        message, details = str(error["message"]), error.get("details")
    else:  # not the API's shape: a proxy or load balancer answered
        type_, details = "http_error", None
        text = " ".join(response.text.split())[:200]
        message = f"{response.request.method} {response.request.url.path} answered {status}"
        message += f": {text}" if text else ""
    if type_ == "too_many_requests" or status == 429:
        return TooManyRequests(message, retry_after=_retry_after(response))
    make = _BY_TYPE.get(type_) or _BY_STATUS.get(status)
    if make is None:
        return ApiError(message, status=status, type_=type_, details=details)
    return make(message, details)


class HttpSession:
    """Requests to one API with one token; see the module docstring.

    ``transport`` is an httpx transport (``httpx.MockTransport``, a WSGI transport...), or
    a whole ``httpx.Client`` such as FastAPI's ``TestClient``, which is then used as it is
    (and not closed here: its owner closes it).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float,
        transport: httpx.BaseTransport | httpx.Client | None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix(API_PREFIX).rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._owned = not isinstance(transport, httpx.Client)
        if isinstance(transport, httpx.Client):
            self._http = transport
        else:
            self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """``method`` on ``API_PREFIX + path``; the answer when it is a success, else the
        error it stands for is raised. ``body`` is sent as JSON, ``content`` as it is (give
        its ``Content-Type`` in ``headers``)."""
        url = f"{self.base_url}{API_PREFIX}{path}"
        try:
            response = self._http.request(
                method,
                url,
                params=dict(params) if params else None,
                json=body if content is None else None,
                content=content,
                headers={**self._headers, **(headers or {})},
            )
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ServiceUnavailable(
                f"the API at {self.base_url} is unavailable: {reason}"
            ) from exc
        if response.is_success:
            return response
        error = error_of(response)
        log.debug("%s %s: %s %s", method, path, response.status_code, error)
        raise error

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        """:meth:`call`, returning the answer's JSON body (None for an empty body)."""
        response = self.call(
            method, path, params=params, body=body, headers=headers, content=content
        )
        if not response.content:
            return None
        return response.json()
