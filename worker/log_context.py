"""The worker's log lines about an attempt carry its run, task, attempt and trace id.

``run_dispatch`` runs each attempt inside :func:`attempt_logging`, so whatever is logged
meanwhile (the outcome, a report that cannot be published, a runner's warning) has the
fields of :mod:`treadle.common.log_format`: ``run``, ``task``, ``attempt``, ``attempt_id``
and ``trace_id`` (the run's, :func:`treadle.common.trace_ids.trace_id_of`: the same the
scheduler's lines about the run carry). Only the attempt id and the task name are read
from the message, never its input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from treadle.common.log_format import log_context

# The dispatch is JSON whose first fields are version, attempt_id, run_id and task: the
# task name is read from its beginning, without parsing the (possibly large) input.
_TASK: Final = re.compile(r'"task"\s*:\s*("(?:[^"\\]|\\.)*")')
_HEAD_CHARS: Final = 2048


@contextmanager
def attempt_logging(args: Sequence[Any], header_attempt: str | None) -> Iterator[None]:
    """Lines logged inside carry the attempt's fields (none if it names no attempt)."""
    fields = attempt_fields(args, header_attempt)
    if not fields:
        yield
        return
    with log_context(**fields):
        yield


def attempt_fields(args: Sequence[Any], header_attempt: str | None) -> dict[str, Any]:
    """``run``, ``attempt``, ``attempt_id`` and ``task`` of a task message's arguments."""
    payload = args[0] if len(args) == 1 else None
    attempt_id: Any = header_attempt
    task: Any = None
    if isinstance(payload, Mapping):
        attempt_id = payload.get("attempt_id") or attempt_id
        task = payload.get("task")
    elif isinstance(payload, str | bytes):
        head = payload[:_HEAD_CHARS]
        found = _TASK.search(head.decode("utf-8", "replace") if isinstance(head, bytes) else head)
        if found is not None:
            try:
                task = json.loads(found.group(1))
            except ValueError:
                task = None
    if not isinstance(attempt_id, str):
        return {}
    parts = attempt_id.rsplit("/", 3)
    if len(parts) != 4 or not parts[3].isdigit():
        return {"attempt_id": attempt_id}
    return {
        "run": parts[0],
        "task": task if isinstance(task, str) else None,
        "attempt": int(parts[3]),
        "attempt_id": attempt_id,
    }
