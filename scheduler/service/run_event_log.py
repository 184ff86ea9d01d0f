"""A run's event log as users may see it: a page of events at a time, secrets masked.

The event log (``run_events``) is what the core was told, in order: the audit trail of a
run. Its entries are stored as the codec encodes them, and the first one,
``run_requested``, carries the run's whole context (pack config, keystore, seed, limits).
Shown to an API client or on a terminal, the context shrinks to what the run document
shows (parameters, secret ones as ``***``, who started it and the parent run), and every
value of a secret is masked wherever it appears, as in the run document.

Shape::

    {run, items: [{seq, kind, at, recorded_at, data}], next_cursor}

``data`` is the event's fields; pass ``next_cursor`` back for the next page (None after
the last). Pages follow ``seq``, so events appended meanwhile come on later pages.
"""

from __future__ import annotations

from typing import Any

from treadle.common.errors import ParameterError
from treadle.common.redaction import REDACTED, redact
from treadle.scheduler.core.events import RunRequested
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import RunContext
from treadle.scheduler.service.run_document import run_secrets
from treadle.scheduler.store import RecordedEvent, UnitOfWork
from treadle.scheduler.store.decision_codec import encode_event

__all__ = ["MAX_EVENT_PAGE", "event_page"]

#: The most events one page may hold.
MAX_EVENT_PAGE = 1000


def event_page(
    uow: UnitOfWork, run_id: str, *, cursor: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """Up to ``limit`` events of ``run_id``'s log after ``cursor`` (from the first if None).

    NotFound for an unknown run; ParameterError for a cursor no page returned or a
    ``limit`` outside 1..1000. Read it in ``Store.snapshot()``.
    """
    if not 1 <= limit <= MAX_EVENT_PAGE:
        raise ParameterError(
            [f"a page holds 1 to {MAX_EVENT_PAGE} events, not {limit}"], subject="limit"
        )
    after = _decode_cursor(cursor) if cursor is not None else 0
    state = uow.load_run_overview(run_id, failures=0).state  # NotFound for an unknown run
    events = uow.list_events(run_id, after_seq=after, limit=limit + 1)
    shown = events[:limit]
    page = {
        "run": run_id,
        "items": [_entry(recorded) for recorded in shown],
        "next_cursor": str(shown[-1].seq) if len(events) > limit else None,
    }
    redacted: dict[str, Any] = redact(page, run_secrets(state))
    return redacted


def _decode_cursor(cursor: str) -> int:
    # ASCII digits only: str.isdigit() also admits '²', which int() refuses
    if not (cursor.isascii() and cursor.isdigit()):
        raise ParameterError(
            [f"{cursor!r} is not a next cursor an event page returned"], subject="cursor"
        )
    return int(cursor)


def _entry(recorded: RecordedEvent) -> dict[str, Any]:
    event = recorded.event
    data = encode_event(event)
    data.pop("kind", None)
    if isinstance(event, RunRequested):
        data["context"] = _shown_context(event.context)
    return {
        "seq": recorded.seq,
        "kind": event.kind,
        "at": iso(recorded.at),
        "recorded_at": iso(recorded.recorded_at),
        "data": data,
    }


def _shown_context(context: RunContext) -> dict[str, Any]:
    """What of a run's context the log shows: no config, keystore, seed or limits."""
    return {
        "parameters": {
            name: (REDACTED if name in context.secrets else value)
            for name, value in context.parameters.items()
        },
        "identity": dict(context.identity),
        "depth": context.depth,
        "parent_run": context.parent_run_id,
    }
