"""How the client reads runs: each read in one snapshot, waits that watch only the run row.

A run that a scheduler keeps changing must still read cleanly: every read here happens in
:meth:`~treadle.scheduler.store.Store.snapshot` (one committed state, on PostgreSQL a
read-only REPEATABLE READ transaction), so it neither retries nor fails because the run is
busy. A big run is read summarised (counts and first failures of with_items tasks) unless
items are asked for; its items are read a page at a time by cursor. Waiting polls only the
run's version and status and builds the run document once, when the run has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from treadle.clientlib.polling import MAX_POLL_INTERVAL, MIN_POLL_INTERVAL, Look, poll
from treadle.clientlib.views import ItemPage, RunInfo
from treadle.common.errors import NotFound, WaitTimeout
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.run_document import item_page, run_document, stored_run_document
from treadle.scheduler.store import Store, UnitOfWork

Session = Callable[[], AbstractContextManager[None]]


def read_run(store: Store, run_id: str, *, items: bool = False) -> RunInfo:
    """The run as one snapshot shows it (NotFound for an unknown id)."""
    with store.snapshot() as uow:
        return _info(uow, run_id, items=items)


def read_items(store: Store, run_id: str, task: str, *, cursor: str | None, limit: int) -> ItemPage:
    """One page of ``task``'s items, read in one snapshot."""
    with store.snapshot() as uow:
        page = item_page(uow, run_id, task, cursor=cursor, limit=limit)
    return ItemPage.model_validate(page)


def wait_for_end(
    store: Store,
    session: Session,
    run_id: str,
    *,
    timeout: float | None,
    poll_interval: float,
    items: bool,
) -> RunInfo:
    """Poll the run row until the run ends, then read the run (see ``Client.wait``)."""
    poll_interval = max(poll_interval, MIN_POLL_INTERVAL)
    seen: int | None = None
    status = "unknown"

    def look() -> Look[RunInfo | None]:
        nonlocal seen, status
        with session(), store.snapshot() as uow:
            row = uow.run_status(run_id)
            if row is None:
                raise NotFound(f"run {run_id} not found")
            if row[0] == seen:
                return Look(None)
            seen, status = row[0], row[1].value
            if not row[1].is_terminal:
                return Look(None, changed=True)
            # the same snapshot: the document is of the ended version just seen
            return Look(_info(uow, run_id, items=items), done=True, changed=True)

    ceiling = max(MAX_POLL_INTERVAL, poll_interval)
    info = poll(look, interval=poll_interval, max_interval=ceiling, growth=2, timeout=timeout)
    if info.value is None:
        raise WaitTimeout(
            f"run {run_id} is still {status} after {timeout:g} s of waiting; "
            "it goes on (wait again, or cancel it)",
            run_id=run_id,
            status=status,
        )
    return info.value


def _info(uow: UnitOfWork, run_id: str, *, items: bool) -> RunInfo:
    return RunInfo.from_document(stored_run_document(uow, run_id, items=items))


def document_after_control(store: Store, state: RunState) -> dict[str, Any]:
    """The run document of ``state``, the state a control left the run in (its inquiries
    read now): what the operator is told, even when a scheduler moves the run on at once."""
    with store.snapshot() as uow:
        inquiries = uow.list_inquiries(run_id=state.run_id)
    return run_document(state, inquiries)
