"""Persistence of runs, definitions, queues and inquiries (SQLite or PostgreSQL).

Open a :class:`Store`, then do each piece of work in a :class:`UnitOfWork`::

    store = Store.open("sqlite:///.treadle/treadle.db")
    with store.unit_of_work() as uow:
        versions = uow.lock_runs([run_id])
        state = uow.load_run(run_id)
        ...
        change = RunChange(state, new_state, [(event, now)], commands)
        uow.save_runs([change], versions, write_commands=handlers.write)

See ``docs/storage.md`` for the tables and how to upgrade a database.
"""

from __future__ import annotations

from treadle.scheduler.store.command_rows import CommandRows, CommandRowWriter, HeldCommand
from treadle.scheduler.store.entries import (
    AttemptEntry,
    AuditEntry,
    AuditRecord,
    DefinitionVersion,
    InquiryEntry,
    KeyValue,
    OutboxEntry,
    RunSummary,
    TimerEntry,
    TokenEntry,
)
from treadle.scheduler.store.errors import CodecError, DuplicateRunError
from treadle.scheduler.store.event_repo import EventEntry, EventWaitEntry
from treadle.scheduler.store.queue_repo import EndedAttempt
from treadle.scheduler.store.run_listing import RunFilter, RunPage
from treadle.scheduler.store.run_overview import ItemSummary, RunOverview, UnitPage
from treadle.scheduler.store.run_repo import RecordedEvent
from treadle.scheduler.store.run_writer import RunChange, SavedRuns
from treadle.scheduler.store.store import Store
from treadle.scheduler.store.uow import UnitOfWork

__all__ = [
    "AttemptEntry",
    "AuditEntry",
    "AuditRecord",
    "CodecError",
    "CommandRowWriter",
    "CommandRows",
    "DefinitionVersion",
    "DuplicateRunError",
    "EndedAttempt",
    "EventEntry",
    "EventWaitEntry",
    "HeldCommand",
    "InquiryEntry",
    "ItemSummary",
    "KeyValue",
    "OutboxEntry",
    "RecordedEvent",
    "RunChange",
    "RunFilter",
    "RunOverview",
    "RunPage",
    "RunSummary",
    "SavedRuns",
    "Store",
    "TimerEntry",
    "TokenEntry",
    "UnitOfWork",
    "UnitPage",
]
