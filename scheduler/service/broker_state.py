"""What a Redis broker holds: which incarnation it is, and which attempts' messages it has.

Redis keeps messages in memory; one that restarts without persistence comes back empty, and
every message it held is gone without a trace. The reconciler notices the restart by the
server's ``run_id`` (``INFO server``, new at every start) and asks which of the attempts it
believes queued still have a message on the broker. Kombu's Redis transport keeps:

* each queue as a list named after the queue, plus one list per priority step above 0
  (``<queue>\\x06\\x16<step>``); a message is the JSON of kombu's message (its ``headers``
  carry Celery's task ``id`` and Treadle's attempt header);
* each message delivered and not yet acknowledged in the hash ``unacked`` (by delivery
  tag), as the JSON of ``[message, exchange, routing_key]``, and its delivery time in the
  sorted set ``unacked_index``.

The functions take a kombu Redis channel (``connection.default_channel``) and read its keys
as named (Treadle sets no global key prefix).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from treadle.common.transport import ATTEMPT_HEADER

__all__ = [
    "attempt_of_message",
    "attempt_of_unacked",
    "held_attempts",
    "queue_keys",
    "reserved_before",
    "run_id",
]


def run_id(client: Any) -> str:
    """The Redis server's ``run_id``: a new one at every start of the server."""
    return str(client.info("server")["run_id"])


def attempt_of_message(message: Any) -> str | None:
    """The attempt id of one kombu message (a mapping with ``headers``), or None."""
    if not isinstance(message, Mapping):
        return None
    headers = message.get("headers") or {}
    if not isinstance(headers, Mapping):
        return None
    attempt = headers.get(ATTEMPT_HEADER) or headers.get("id")
    return attempt if isinstance(attempt, str) and attempt else None


def _json(value: Any) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def attempt_of_unacked(value: Any) -> str | None:
    """The attempt id of one entry of kombu's ``unacked`` hash (``[message, ...]``)."""
    entry = _json(value)
    if not isinstance(entry, list) or not entry:
        return None
    return attempt_of_message(entry[0])


def queue_keys(channel: Any, queue: str) -> list[str]:
    """The Redis lists that hold ``queue``'s messages, one per priority step."""
    keys = [channel._q_for_pri(queue, step) for step in channel.priority_steps]
    return list(dict.fromkeys(keys))


def held_attempts(channel: Any, queues: Iterable[str]) -> set[str]:
    """Attempts with a message on the broker: waiting in one of ``queues``, or delivered to
    a worker and not yet acknowledged. Raises the broker's error when Redis cannot be read."""
    keys = [key for queue in dict.fromkeys(queues) for key in queue_keys(channel, queue)]
    with channel.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.lrange(key, 0, -1)
        pipe.hvals(channel.unacked_key)
        *waiting, unacked = pipe.execute()
    held = {attempt_of_message(_json(raw)) for entries in waiting for raw in entries}
    held.update(attempt_of_unacked(raw) for raw in unacked)
    held.discard(None)
    return {attempt for attempt in held if attempt is not None}


def reserved_before(channel: Any, cutoff: float) -> dict[str, float]:
    """Attempts a worker took off a queue (delivered, not yet acknowledged) before the
    Unix time ``cutoff``, by id, with how many seconds ago."""
    client = channel.client
    tags = client.zrangebyscore(channel.unacked_index_key, "-inf", cutoff, withscores=True)
    if not tags:
        return {}
    raw = client.hmget(channel.unacked_key, [tag for tag, _ in tags])
    now = time.time()
    found: dict[str, float] = {}
    for (_tag, at), value in zip(tags, raw, strict=True):
        attempt_id = attempt_of_unacked(value)
        if attempt_id is not None:
            found[attempt_id] = now - float(at)
    return found
