"""The notice a save of runs sends: which runs changed, for whoever watches them live.

Every change of a run is saved by ``save_runs`` (:mod:`.run_writer`), whoever made it: a
scheduler's decision, a control or an answer from the API or the CLI, the embedded
runner. On PostgreSQL that save also sends ``NOTIFY treadle_run_changes`` in its own
transaction (so it is delivered only if the save commits) with the changed runs' ids,
separated by spaces, as payload; the web UI's streams ``LISTEN`` to it in each API
process. PostgreSQL refuses payloads of 8000 bytes or more, so a batch whose ids do not
fit in :data:`MAX_NOTICE_BYTES` says :data:`MANY_RUNS_CHANGED` instead ("any run may
have changed": every listener looks again). Run ids never hold spaces (``r-<hex>`` and
child runs' ``<parent>.<execution>.<position>.<attempt>``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = [
    "MANY_RUNS_CHANGED",
    "MAX_NOTICE_BYTES",
    "RUN_CHANGES_CHANNEL",
    "RunsSaved",
    "changed_runs",
    "run_changes_notice",
]

#: Told the ids of the runs a transaction saved, once it committed, in the thread that
#: committed (``Store.runs_saved``: in-process watchers, as on SQLite, where no NOTIFY is).
RunsSaved = Callable[[Sequence[str]], None]

#: The PostgreSQL channel saves of runs are announced on.
RUN_CHANGES_CHANNEL: Final = "treadle_run_changes"
#: The payload of a notice whose run ids would not fit: every watched run may have changed.
MANY_RUNS_CHANGED: Final = "*"
#: The longest payload sent (PostgreSQL's limit is 8000 bytes, with some room kept).
MAX_NOTICE_BYTES: Final = 7900


def run_changes_notice(run_ids: Iterable[str]) -> str:
    """The payload announcing that ``run_ids`` changed (:data:`MANY_RUNS_CHANGED` when
    their ids would make it longer than :data:`MAX_NOTICE_BYTES`)."""
    payload = " ".join(run_ids)
    if len(payload.encode()) > MAX_NOTICE_BYTES:
        return MANY_RUNS_CHANGED
    return payload


def changed_runs(payload: str) -> frozenset[str] | None:
    """The run ids a notice names; ``None`` when any run may have changed."""
    if payload.strip() == MANY_RUNS_CHANGED:
        return None
    return frozenset(payload.split())
