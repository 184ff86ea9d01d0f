"""core.notify: tell people or systems something, without ever holding the run up.

Channels: ``log`` writes the message at INFO to the ``treadle.notify`` logger (on the
worker; where logging is not configured, as under ``treadle run``, the line goes to
stderr instead of being dropped); ``webhook`` POSTs ``{"message", "payload", "run_id"?,
"task"?}`` as JSON and, when ``secret`` is given, signs the exact body:
``X-Treadle-Signature: sha256=<hex HMAC-SHA256(secret, body)>``. A delivery gets
``timeout`` seconds in all (the request runs in a helper thread the action stops waiting
for); whatever goes wrong is recorded in the result (``delivered: false`` and ``error``),
never raised, so the run goes on. The secret and the headers are never logged or put in
an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
import threading
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Treadle-Signature"

log = logging.getLogger("treadle.notify")


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def notify(
    *,
    channel: str = "log",
    message: str = "",
    url: str | None = None,
    secret: str | None = None,
    headers: dict[str, Any] | None = None,
    payload: Any = None,
    timeout: float = 5,
    run_id: str | None = None,
    task: str | None = None,
) -> dict[str, Any]:
    if channel == "log":
        where = " ".join(f"{k} {v}" for k, v in (("run", run_id), ("task", task)) if v)
        _log_line(f"notification{f' ({where})' if where else ''}: {message}")
        return {"delivered": True, "channel": "log"}
    if channel == "webhook":
        if not url:
            return _failed(channel, "a webhook notification needs a url")
        body: dict[str, Any] = {"message": message, "payload": payload}
        if run_id is not None:
            body["run_id"] = run_id
        if task is not None:
            body["task"] = task
        return _post(url, body, secret, headers or {}, float(timeout))
    return _failed(str(channel), f"unknown channel {channel!r} (use log or webhook)")


def _log_line(line: str) -> None:
    """INFO on ``treadle.notify``; on stderr when no logging is configured in this process
    (Python would drop an INFO record then, and the notification would be lost unseen)."""
    if log.hasHandlers():
        log.info("%s", line)
        return
    sys.stderr.write(f"INFO {log.name}: {line}\n")
    sys.stderr.flush()


def _failed(channel: str, error: str, status_code: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"delivered": False, "channel": channel, "error": error}
    if status_code is not None:
        result["status_code"] = status_code
    return result


def _post(
    url: str, body: dict[str, Any], secret: str | None, extra: dict[str, Any], timeout: float
) -> dict[str, Any]:
    try:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        return _failed("webhook", f"the payload is not JSON: {exc}")
    headers = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()}
    headers["Content-Type"] = "application/json"
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, raw)
    outcome: dict[str, Any] = {}

    def deliver() -> None:
        try:
            response = httpx.post(url, content=raw, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # a bad URL or header: recorded like any other failure
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        else:
            outcome["status_code"] = response.status_code

    sender = threading.Thread(target=deliver, name="treadle-notify", daemon=True)
    sender.start()
    sender.join(timeout)
    if sender.is_alive():
        return _failed("webhook", f"no answer within {timeout:g} s")
    if "error" in outcome:
        return _failed("webhook", str(outcome["error"]))
    status = int(outcome["status_code"])
    if 200 <= status < 300:
        return {"delivered": True, "channel": "webhook", "status_code": status}
    return _failed("webhook", f"the webhook answered HTTP {status}", status)
