"""The run services a client builds to start and change runs, and what it says when a
workflow has nothing published to start.

A :class:`treadle.Client` is shared between threads, but a
:class:`~treadle.scheduler.service.runs.RunService` caches run states and must not be, so
the client builds a fresh one (and the :class:`~treadle.scheduler.service.starting.RunStarter`
around it) for every call. How they are wired for a client (commands written to the
outbox, the schedulers woken with ``NOTIFY``, the deployment's default queue and limits)
lives here, apart from the client's public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from treadle.clientlib.connection import database_location
from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.settings import Settings
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.deletions import deleted_message, is_tombstone
from treadle.scheduler.service.run_log import RunLog
from treadle.scheduler.service.run_spans import observe_run_spans
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store import Store

__all__ = ["run_starter", "unknown_definition_message"]


def run_starter(
    store: Store, definitions: Definitions, settings: Settings, *, clock: Callable[[], datetime]
) -> RunStarter:
    """A new starter (and run service) for one call of one thread."""
    # An action's queue is pinned in the published definition and travels on the
    # dispatch; tasks of actions without one go to the deployment's default queue.
    handlers = CommandHandlers(settings.default_queue)
    runs = RunService(
        store,
        definitions,
        clock=clock,
        write_commands=handlers.write,
        notify_outbox=True,
    )
    RunLog().observe(runs)  # the API's (and clients') workflow.start lines
    observe_run_spans(runs)  # in `treadle api` with tracing on: the runs it ends
    return RunStarter.from_settings(runs, settings)


def unknown_definition_message(store: Store, ref: str, version: int | None) -> str:
    """Why ``ref`` (at ``version``) cannot be found, naming the versions that can (or
    that it was deleted). Read in a snapshot: a caller's open transaction (an audited
    start, holding SQLite's write lock) does not block it."""
    with store.snapshot() as uow:
        owner = uow.definition_owner(ref, DEFAULT_WORKSPACE)
        published = [] if owner is None else uow.list_definition_versions(ref, workspace=owner)
    versions = [v.version for v in published]
    database = database_location(store.engine.url)
    deleted = published[-1] if published and is_tombstone(published[-1]) else None
    if deleted is not None and version in (None, deleted.version):
        return deleted_message(deleted)
    if versions and version is not None:
        listed = ", ".join(str(v) for v in versions)
        return (
            f"workflow '{ref}' has no version {version} in {database} "
            f"(published versions: {listed})"
        )
    return (
        f"workflow '{ref}' has no published version in {database}; start "
        "`treadle scheduler` with its packs, or `treadle workflows register FILE`"
    )
