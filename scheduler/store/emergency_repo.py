"""Emergency stops in the store: setting and lifting them, and what the schedulers enforce.

A stop is a row of ``emergency_stops`` that holds until it is lifted; lifting keeps the row
(who, when, why), so the stops' history stays readable. The schedulers ask the rest:
which running runs a stop covers (to pause them, remembered in ``emergency_stop_runs``),
which of their attempts wait on the broker or run (to take them back), and which runs a
lifted stop paused (to resume them). Setting or lifting a stop ``NOTIFY``s the schedulers
(PostgreSQL), so each sees it at once rather than at its next look.

The runs to lift are claimed with ``SKIP LOCKED``: two schedulers resuming at once take
different runs. Pausing needs no claim: a second pause of a run finds it pausing already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, insert, select, text, true, update
from sqlalchemy.exc import IntegrityError

from treadle.common.emergency_stop import EmergencyStop, StopCover, StopScope, StopSource
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.emergency_tables import emergency_stop_runs, emergency_stops
from treadle.scheduler.store.models import attempts, outbox, runs

#: The PostgreSQL channel setting or lifting a stop notifies (the schedulers listen).
EMERGENCY_STOP_CHANNEL = "treadle_emergency_stop"

_HOLDING = emergency_stops.c.lifted_at.is_(None)
#: Runs whose taken-back attempts wait for the resume to run again.
_HELD_RUNS = (RunStatus.PAUSING.value, RunStatus.PAUSED.value)


def _stop(row: Mapping[Any, Any]) -> EmergencyStop:
    return EmergencyStop(
        id=row["id"],
        scope=StopScope(row["scope"]),
        workspace=row["workspace"],
        reason=row["reason"],
        terminate=bool(row["terminate"]),
        source=StopSource(row["source"]),
        set_by=row["set_by"],
        since=row["since"],
        lifted_at=row["lifted_at"],
        lifted_by=row["lifted_by"],
        lift_reason=row["lift_reason"],
    )


def _covered(cover: StopCover) -> Any:
    """The runs ``cover`` holds (every run when it covers everything)."""
    if cover.everything:
        return true()
    return runs.c.workspace.in_(sorted(cover.workspaces))


class EmergencyStopRepository(Repository):
    """Emergency stops and the runs they paused (see the module docstring)."""

    # -- the stops -----------------------------------------------------------------------------

    def emergency_stops(self, *, lifted: bool = False, limit: int = 50) -> list[EmergencyStop]:
        """The stops that hold, oldest first; with ``lifted``, the newest ``limit`` of every
        stop ever set, newest first."""
        stmt = select(emergency_stops)
        if lifted:
            stmt = stmt.order_by(emergency_stops.c.id.desc()).limit(limit)
        else:
            stmt = stmt.where(_HOLDING).order_by(emergency_stops.c.id)
        return [_stop(row) for row in self._conn.execute(stmt).mappings()]

    def set_emergency_stop(
        self,
        scope: StopScope,
        workspace: str,
        *,
        reason: str,
        terminate: bool,
        source: StopSource,
        set_by: str,
        since: datetime,
    ) -> tuple[EmergencyStop, bool]:
        """The stop holding this scope, and whether it is new: one is set unless one holds
        already (then ``terminate`` is added to it when asked; its reason stays)."""
        for _ in range(2):
            held = self._holding(scope, workspace)
            if held is not None:
                if terminate and not held.terminate:
                    self._conn.execute(
                        update(emergency_stops)
                        .where(emergency_stops.c.id == held.id)
                        .values(terminate=True)
                    )
                    held = self._holding(scope, workspace) or held
                return held, False
            values = {
                "scope": scope.value,
                "workspace": workspace,
                "reason": reason,
                "terminate": terminate,
                "source": source.value,
                "set_by": set_by,
                "since": since,
            }
            try:
                with self._conn.begin_nested():
                    self._conn.execute(insert(emergency_stops).values(values))
            except IntegrityError:  # another process set it in the meantime
                continue
            made = self._holding(scope, workspace)
            assert made is not None  # inserted just now, in this transaction
            return made, True
        raise RuntimeError("an emergency stop was set and lifted while setting it")

    def _holding(self, scope: StopScope, workspace: str) -> EmergencyStop | None:
        row = (
            self._conn.execute(
                select(emergency_stops).where(
                    _HOLDING,
                    emergency_stops.c.scope == scope.value,
                    emergency_stops.c.workspace == workspace,
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _stop(row)

    def holding_emergency_stop(self, scope: StopScope, workspace: str) -> EmergencyStop | None:
        """The stop that holds exactly this scope, if one does."""
        return self._holding(scope, workspace)

    def lift_emergency_stop(
        self, stop_id: int, *, by: str, at: datetime, reason: str | None
    ) -> bool:
        """Lift a stop; False when it was lifted already."""
        lifted = self._conn.execute(
            update(emergency_stops)
            .where(emergency_stops.c.id == stop_id, _HOLDING)
            .values(lifted_at=at, lifted_by=by, lift_reason=reason)
        )
        return lifted.rowcount > 0

    def notify_emergency_stops(self) -> None:
        """Tell listening schedulers the stops changed (PostgreSQL ``NOTIFY`` at commit)."""
        if self._postgres:
            self._conn.execute(text(f"NOTIFY {EMERGENCY_STOP_CHANNEL}"))

    # -- what a holding stop pauses and takes back ---------------------------------------------

    def runs_to_stop(self, cover: StopCover, limit: int) -> list[str]:
        """Running runs ``cover`` holds, in id order (the order runs are locked in)."""
        if cover.empty:
            return []
        stmt = (
            select(runs.c.id)
            .where(runs.c.status == RunStatus.RUNNING.value, _covered(cover))
            .order_by(runs.c.id)
            .limit(limit)
        )
        return list(self._conn.execute(stmt).scalars())

    def remember_stopped_runs(self, stop_id: int, run_ids: Sequence[str], at: datetime) -> None:
        """Note that ``stop_id`` paused these runs (a run noted already keeps its stop)."""
        rows = [{"run_id": run_id, "stop_id": stop_id, "paused_at": at} for run_id in run_ids]
        self._upsert(emergency_stop_runs, rows, ("run_id",))

    def attempts_to_take_back(
        self, cover: StopCover, *, running: bool, limit: int
    ) -> list[tuple[str, str]]:
        """Attempts on the broker of runs ``cover`` holds that are paused or pausing (their
        next attempt then waits for the resume): queued ones whose dispatch was published
        (one not yet sent is no worker's yet), or with ``running``, those a worker runs;
        (attempt id, workspace), oldest first."""
        if cover.empty:
            return []
        if running:
            wanted = attempts.c.status == AttemptStatus.RUNNING.value
        else:
            unsent = exists().where(
                outbox.c.run_id == attempts.c.run_id,
                outbox.c.created_at == attempts.c.dispatched_at,
                outbox.c.sent_at.is_(None),
            )
            wanted = and_(attempts.c.status == AttemptStatus.QUEUED.value, ~unsent)
        stmt = (
            select(attempts.c.attempt_id, runs.c.workspace)
            .join(runs, runs.c.id == attempts.c.run_id)
            .where(wanted, runs.c.status.in_(_HELD_RUNS), _covered(cover))
            .order_by(attempts.c.dispatched_at, attempts.c.attempt_id)
            .limit(limit)
        )
        return [(attempt_id, workspace) for attempt_id, workspace in self._conn.execute(stmt)]

    def run_places(self, run_ids: Sequence[str]) -> dict[str, tuple[str, RunStatus]]:
        """The workspace and status of each of these runs that exists."""
        found: dict[str, tuple[str, RunStatus]] = {}
        for part in chunks(sorted(set(run_ids))):
            rows = self._conn.execute(
                select(runs.c.id, runs.c.workspace, runs.c.status).where(runs.c.id.in_(part))
            )
            found.update({run_id: (space, RunStatus(status)) for run_id, space, status in rows})
        return found

    # -- lifting -------------------------------------------------------------------------------

    def stop_lifts_pending(self) -> bool:
        """Whether a lifted stop still has paused runs to resume (or hand on)."""
        stmt = (
            select(emergency_stop_runs.c.run_id)
            .join(emergency_stops, emergency_stops.c.id == emergency_stop_runs.c.stop_id)
            .where(emergency_stops.c.lifted_at.is_not(None))
            .limit(1)
        )
        return self._conn.execute(stmt).first() is not None

    def stopped_runs_to_lift(self, limit: int) -> list[tuple[str, str, EmergencyStop]]:
        """Runs paused by a stop that is lifted now: (run id, its workspace, the stop),
        in run id order, claimed (``SKIP LOCKED``) for this transaction."""
        stmt = (
            select(emergency_stop_runs.c.run_id, emergency_stop_runs.c.stop_id)
            .join(emergency_stops, emergency_stops.c.id == emergency_stop_runs.c.stop_id)
            .where(emergency_stops.c.lifted_at.is_not(None))
            .order_by(emergency_stop_runs.c.run_id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=emergency_stop_runs)
        )
        claimed = self._conn.execute(stmt).all()
        if not claimed:
            return []
        stops = {
            row["id"]: _stop(row)
            for row in self._conn.execute(
                select(emergency_stops).where(
                    emergency_stops.c.id.in_(sorted({stop_id for _, stop_id in claimed}))
                )
            ).mappings()
        }
        places = self.run_places([run_id for run_id, _ in claimed])
        return [
            (run_id, places[run_id][0] if run_id in places else "", stops[stop_id])
            for run_id, stop_id in claimed
        ]

    def hand_on_stopped_runs(self, run_ids: Sequence[str], stop_id: int) -> None:
        """These runs stay paused, now by ``stop_id`` (another stop that holds them)."""
        for part in chunks(list(run_ids)):
            self._conn.execute(
                update(emergency_stop_runs)
                .where(emergency_stop_runs.c.run_id.in_(part))
                .values(stop_id=stop_id)
            )

    def forget_stopped_runs(self, run_ids: Sequence[str]) -> None:
        for part in chunks(list(run_ids)):
            self._conn.execute(
                delete(emergency_stop_runs).where(emergency_stop_runs.c.run_id.in_(part))
            )

    def stopped_by(self, run_id: str) -> int | None:
        """The stop that paused ``run_id`` (None: no stop did)."""
        found: int | None = self._conn.execute(
            select(emergency_stop_runs.c.stop_id).where(emergency_stop_runs.c.run_id == run_id)
        ).scalar_one_or_none()
        return found
