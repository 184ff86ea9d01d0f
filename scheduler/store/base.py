"""What every repository of a unit of work shares: one connection (one transaction) and the
bookkeeping clock, plus the few statements whose SQL differs between SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Connection, Insert, Select, Table, TextClause, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from treadle.scheduler.store import prepared
from treadle.scheduler.store.models import runs
from treadle.scheduler.store.run_notices import RunsSaved
from treadle.scheduler.store.secret_keys import StoreKeys

Clock = Callable[[], datetime]

#: Ids per ``IN (...)`` list; keeps statements well under SQLite's bound-parameter limit.
CHUNK = 500

# Built once: it is on every step's path.
_LOCK_RUNS = (
    select(runs.c.id, runs.c.version, runs.c.last_seq)
    .where(runs.c.id.in_(bindparam("run_ids", expanding=True)))
    .order_by(runs.c.id)
    .with_for_update()
)

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@cache
def _upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> Insert:
    """An ``INSERT ... ON CONFLICT`` for these columns, built once (building it is costly)."""
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    if columns:
        upsert: Insert = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in columns}
        )
        return upsert
    nothing: Insert = stmt.on_conflict_do_nothing(index_elements=list(keys))
    return nothing


class Repository:
    """Base of the repositories mixed into :class:`~treadle.scheduler.store.uow.UnitOfWork`."""

    def __init__(
        self,
        connection: Connection,
        clock: Clock,
        *,
        read_only: bool = False,
        keys: StoreKeys | None = None,
        runs_saved: Sequence[RunsSaved] = (),
        notify_run_changes: bool = True,
        prepared_statements: bool = False,
    ) -> None:
        #: Told which runs ``save_runs`` saved, after the commit (``Store.runs_saved``).
        self._runs_saved = runs_saved
        #: Whether ``save_runs`` NOTIFYs the runs it saved (PostgreSQL; ``run_notices``).
        self._notify_run_changes = notify_run_changes
        #: Whether a step's statements run prepared (PostgreSQL; ``prepared``).
        self._prepared_statements = prepared_statements
        #: A read-only snapshot (``Store.snapshot``): every statement sees one committed state.
        self._read_only = read_only
        #: The key secrets are encrypted with, looked up when first needed.
        self._keys = keys if keys is not None else StoreKeys(connection.engine.url)
        self._after_commit: list[Callable[[], None]] = []
        #: Versions of the runs this transaction holds locked (see ``lock_runs``).
        self._locked: dict[str, int] = {}
        #: The last event ``seq`` of each run this transaction holds locked.
        self._last_seqs: dict[str, int] = {}
        self._conn = connection
        self._clock = clock
        self._postgres = connection.dialect.name == "postgresql"

    @property
    def connection(self) -> Connection:
        """The connection of this unit of work (for callers adding their own statements)."""
        return self._conn

    def _upsert(self, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
        """Insert ``rows``, replacing the non-key columns of rows whose ``keys`` already exist."""
        if not rows:
            return
        columns = tuple(name for name in rows[0] if name not in keys)
        stmt = _upsert_statement(self._conn.dialect.name, table, tuple(keys), columns)
        self._conn.execute(stmt, list(rows))

    def _insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            stmt: Insert = table.insert()
            self._conn.execute(stmt, list(rows))

    def _execute_prepared(self, statement: TextClause, params: Mapping[str, Any]) -> Any:
        """Run a hot ``text()`` statement, prepared where that is on (:mod:`.prepared`)."""
        return prepared.execute(self._conn, statement, params, prepared=self._prepared_statements)

    def _not_locked(self, run_ids: Sequence[str]) -> list[str]:
        """Of ``run_ids``, those this transaction does not hold yet, in id order (the
        order every transaction locks runs in)."""
        return [run_id for run_id in sorted(set(run_ids)) if run_id not in self._locked]

    def _note_locked(self, run_id: str, version: int, last_seq: int) -> None:
        self._locked[run_id] = int(version)
        self._last_seqs[run_id] = int(last_seq)

    def _lock_runs(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Lock the runs not held yet (one statement); each found run's version. See
        ``RunRepository.lock_runs``."""
        missing = self._not_locked(run_ids)
        if missing:
            for row in self._conn.execute(_LOCK_RUNS, {"run_ids": missing}):
                self._note_locked(row[0], row[1], row[2])
        wanted = sorted(set(run_ids))
        return {run_id: self._locked[run_id] for run_id in wanted if run_id in self._locked}

    @staticmethod
    def _lock_rows(stmt: Select[Any]) -> Select[Any]:
        """Lock the selected rows until the transaction ends, waiting for other holders."""
        return stmt.with_for_update()

    @staticmethod
    def _claim(stmt: Select[Any]) -> Select[Any]:
        """Lock the selected rows, skipping rows another transaction holds (PostgreSQL).

        SQLite has no row locks; there the unit of work's write lock serialises claimers.
        """
        return stmt.with_for_update(skip_locked=True)
