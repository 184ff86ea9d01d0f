"""Runs HTTP actions (``core.http`` and pack actions with ``runner_type: http``) with httpx.

The response becomes the result (``status_code``, ``headers``, ``body``), with a JSON body
parsed so workflows can read ``task.x.result.body.field``. A status the action did not
expect fails the task with ``HTTPStatusError``; a network problem with ``HTTPError``.
An action that declares ``side_effects: true`` sends its attempt's idempotency key as the
``Idempotency-Key`` header (unless the input's ``headers`` give one), the same on every
retry of the task, so the server can apply the request once.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from treadle.common.spec import ActionSpec
from treadle.worker.errors import ActionError
from treadle.worker.runners.base import ActionCall, seconds_parameter

DEFAULT_TIMEOUT_SECONDS = 30.0
#: The header an attempt's idempotency key is sent in.
IDEMPOTENCY_HEADER = "Idempotency-Key"
BODY_EXCERPT_CHARS = 300


class HttpRunner:
    """One request per call, with a fresh client (no state shared between threads)."""

    def run(self, action: ActionSpec, params: dict[str, Any], context: ActionCall) -> Any:
        url = params.get("url")
        if not isinstance(url, str) or not url:
            raise ActionError("InvalidInput", f"action '{action.ref}' needs a 'url' parameter")
        method = str(params.get("method") or "GET").upper()
        if params.get("json") is not None and params.get("body") is not None:
            raise ActionError("InvalidInput", "give either 'json' or 'body', not both")
        expected = _expected_statuses(params.get("expected_status"))
        requested = seconds_parameter(params)
        timeout = context.time_limit(DEFAULT_TIMEOUT_SECONDS if requested is None else requested)
        limit = context.settings.max_payload_bytes
        headers = {str(k): _header_value(v) for k, v in (params.get("headers") or {}).items()}
        key = context.dispatch.idempotency_key
        if key is not None and IDEMPOTENCY_HEADER.lower() not in {h.lower() for h in headers}:
            headers[IDEMPOTENCY_HEADER] = key
        request_args: dict[str, Any] = {"headers": headers, "params": params.get("params") or None}
        if params.get("json") is not None:
            request_args["json"] = params["json"]
        elif params.get("body") is not None:
            body = params["body"]
            request_args["content"] = body if isinstance(body, str) else json.dumps(body)
        where = f"{method} {_without_query(url)}"
        try:
            with (
                httpx.Client(
                    timeout=timeout,
                    follow_redirects=params.get("follow_redirects", True) is not False,
                    verify=params.get("verify_tls", True) is not False,
                ) as client,
                client.stream(method, url, **request_args) as response,
            ):
                raw = _read_limited(response, limit, where)
        except httpx.TimeoutException as exc:
            raise ActionError(
                "HTTPError", f"{where}: timed out after {timeout:g} seconds ({type(exc).__name__})"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ActionError("HTTPError", f"{where}: {type(exc).__name__}: {exc}") from None
        body_value = _decode_body(response, raw)
        if not _status_ok(response.status_code, expected):
            excerpt = raw.decode(response.encoding or "utf-8", errors="replace")
            excerpt = excerpt[:BODY_EXCERPT_CHARS] + (
                "..." if len(excerpt) > BODY_EXCERPT_CHARS else ""
            )
            wanted = "2xx" if expected is None else ", ".join(str(s) for s in expected)
            raise ActionError(
                "HTTPStatusError",
                f"{where} returned {response.status_code} (expected {wanted}): {excerpt}",
                {"status_code": response.status_code, "body": excerpt},
            )
        return {
            "status_code": response.status_code,
            "headers": dict(response.headers.items()),
            "body": body_value,
        }


def _expected_statuses(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ActionError(
            "InvalidInput", "parameter 'expected_status' must be a status code or a list of them"
        )
    return tuple(values)


def _status_ok(status: int, expected: tuple[int, ...] | None) -> bool:
    return 200 <= status < 300 if expected is None else status in expected


def _read_limited(response: httpx.Response, limit: int, where: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise ActionError(
                "PayloadTooLarge",
                f"{where}: the response body is over the limit of {limit} bytes",
                {"limit_bytes": limit},
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_body(response: httpx.Response, raw: bytes) -> Any:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = content_type == "application/json" or content_type.endswith("+json")
    if is_json:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            pass  # labelled JSON but is not: hand it over as text
    return raw.decode(response.encoding or "utf-8", errors="replace")


def _header_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
