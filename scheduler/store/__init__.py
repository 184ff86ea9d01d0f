"""Persistence of runs, definitions, queues and inquiries (SQLite or PostgreSQL).

Open a :class:`Store`, then do each piece of work in a :class:`UnitOfWork`::

    store = Store.open("sqlite:///.treadle/treadle.db")
    with store.unit_of_work() as uow:
        state = uow.load_run(run_id)
        ...
        uow.save_run(state, new_state, [(event, now)], commands)

See ``docs/storage.md`` for the tables and how to upgrade a database.
"""

from __future__ import annotations

from treadle.scheduler.store.entries import (
    OUTBOX_CANCEL_CHILD,
    OUTBOX_CANCEL_TASK,
    OUTBOX_DISPATCH,
    OUTBOX_KINDS,
    OUTBOX_NOTIFY_PARENT,
    OUTBOX_PAUSE_CHILD,
    OUTBOX_RESUME_CHILD,
    OUTBOX_START_CHILD,
    AttemptEntry,
    DefinitionVersion,
    InquiryEntry,
    KeyValue,
    OutboxEntry,
    RunSummary,
    TimerEntry,
)
from treadle.scheduler.store.errors import CodecError, DuplicateRunError, StaleRunError
from treadle.scheduler.store.event_repo import EventEntry, EventWaitEntry
from treadle.scheduler.store.queue_repo import AttemptOutcome
from treadle.scheduler.store.run_repo import RecordedEvent
from treadle.scheduler.store.run_writer import RunChange
from treadle.scheduler.store.store import Store
from treadle.scheduler.store.uow import UnitOfWork

__all__ = [
    "OUTBOX_CANCEL_CHILD",
    "OUTBOX_CANCEL_TASK",
    "OUTBOX_DISPATCH",
    "OUTBOX_KINDS",
    "OUTBOX_NOTIFY_PARENT",
    "OUTBOX_PAUSE_CHILD",
    "OUTBOX_RESUME_CHILD",
    "OUTBOX_START_CHILD",
    "AttemptEntry",
    "AttemptOutcome",
    "CodecError",
    "DefinitionVersion",
    "DuplicateRunError",
    "EventEntry",
    "EventWaitEntry",
    "InquiryEntry",
    "KeyValue",
    "OutboxEntry",
    "RecordedEvent",
    "RunChange",
    "RunSummary",
    "StaleRunError",
    "Store",
    "TimerEntry",
    "UnitOfWork",
]
