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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.scheduler.store.command_rows import CommandRows, CommandRowWriter, HeldCommand
    from treadle.scheduler.store.entries import (
        AttemptEntry,
        AuditEntry,
        AuditRecord,
        DefinitionVersion,
        InquiryEntry,
        KeyValue,
        OutboxEntry,
        RunPage,
        RunSummary,
        TimerEntry,
        TokenEntry,
    )
    from treadle.scheduler.store.errors import CodecError, DuplicateRunError
    from treadle.scheduler.store.event_repo import EventEntry, EventWaitEntry
    from treadle.scheduler.store.queue_repo import EndedAttempt
    from treadle.scheduler.store.run_listing import RunFilter
    from treadle.scheduler.store.run_overview import ItemSummary, RunOverview, UnitPage
    from treadle.scheduler.store.run_repo import RecordedEvent
    from treadle.scheduler.store.run_writer import RunChange, SavedRuns
    from treadle.scheduler.store.store import Store
    from treadle.scheduler.store.uow import UnitOfWork

#: Where each name of ``__all__`` lives. The names are imported when first asked for
#: (PEP 562): importing one module of the store (say, a dataclass the API client shares)
#: must not import them all, with SQLAlchemy's tables and the core behind them.
_HOMES: dict[str, str] = {
    "AttemptEntry": "entries",
    "AuditEntry": "entries",
    "AuditRecord": "entries",
    "CodecError": "errors",
    "CommandRowWriter": "command_rows",
    "CommandRows": "command_rows",
    "DefinitionVersion": "entries",
    "DuplicateRunError": "errors",
    "EndedAttempt": "queue_repo",
    "EventEntry": "event_repo",
    "EventWaitEntry": "event_repo",
    "HeldCommand": "command_rows",
    "InquiryEntry": "entries",
    "ItemSummary": "run_overview",
    "KeyValue": "entries",
    "OutboxEntry": "entries",
    "RecordedEvent": "run_repo",
    "RunChange": "run_writer",
    "RunFilter": "run_listing",
    "RunOverview": "run_overview",
    "RunPage": "entries",
    "RunSummary": "entries",
    "SavedRuns": "run_writer",
    "Store": "store",
    "TimerEntry": "entries",
    "TokenEntry": "entries",
    "UnitOfWork": "uow",
    "UnitPage": "run_overview",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
