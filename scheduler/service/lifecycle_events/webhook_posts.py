"""POSTing one lifecycle event to one webhook sink, signed, and when to try again.

The request carries the CloudEvent as its body (``Content-Type:
application/cloudevents+json``, the structured mode of the CloudEvents HTTP binding) and
the two headers every Treadle webhook is signed with (:mod:`treadle.common.webhooks`):
``X-Treadle-Timestamp`` and ``X-Treadle-Signature: sha256=<HMAC-SHA256 of
"<timestamp>." + body>``, keyed with the sink's secret. A 2xx answer delivers it; anything
else (another status, a refused connection, no answer within the sink's timeout) is an
error recorded as text that never holds the sink's URL or secret. Redirects are not
followed: a sink answers where it is configured.

A failed attempt ``n`` is tried again after ``TREADLE_LIFECYCLE_RETRY_SECONDS * 2**(n-1)``
seconds (at most an hour, :func:`treadle.common.backoff.retry_delay`), until
``TREADLE_LIFECYCLE_DELIVERY_ATTEMPTS`` attempts were made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx

from treadle.common.backoff import retry_delay
from treadle.common.event_sinks import EventSink
from treadle.common.spec import Backoff, RetrySpec
from treadle.common.webhooks import signed_headers
from treadle.scheduler.service.lifecycle_events.cloudevents import CLOUDEVENTS_JSON

__all__ = ["MAX_RETRY_DELAY", "PostResult", "post_event", "retry_after"]

#: No retry of a delivery waits longer than this.
MAX_RETRY_DELAY = timedelta(hours=1)
#: How much of an error's text is kept.
_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class PostResult:
    """What one POST did: delivered (2xx), or the status and error text."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None


def post_event(client: httpx.Client, sink: EventSink, body: bytes, timestamp: int) -> PostResult:
    """POST ``body`` (a CloudEvent's JSON) to ``sink``, signed at ``timestamp``."""
    secret = sink.secret.get_secret_value()
    headers = {"Content-Type": CLOUDEVENTS_JSON, **signed_headers(secret, timestamp, body)}
    try:
        response = client.post(
            sink.url, content=body, headers=headers, timeout=sink.timeout_seconds
        )
    except httpx.TimeoutException:
        return PostResult(False, error=f"no answer within {sink.timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return PostResult(False, error=_without_secrets(sink, f"{type(exc).__name__}: {exc}"))
    if 200 <= response.status_code < 300:
        return PostResult(True, response.status_code)
    return PostResult(False, response.status_code, f"HTTP {response.status_code}")


def retry_after(attempts: int, first_delay: float) -> timedelta:
    """How long after failed attempt number ``attempts`` (1 for the first) to try again."""
    policy = RetrySpec(
        count=attempts,
        delay=timedelta(seconds=first_delay),
        backoff=Backoff.EXPONENTIAL,
        max_delay=MAX_RETRY_DELAY,
    )
    return retry_delay(policy, attempts)


def _without_secrets(sink: EventSink, text: str) -> str:
    """``text`` with the sink's URL and secret replaced by its name (an error may quote
    the URL, which may hold a token)."""
    shown = text.replace(sink.url, f"<sink {sink.name}>")
    secret = sink.secret.get_secret_value()
    if secret:
        shown = shown.replace(secret, "***")
    return shown[:_ERROR_CHARS]
