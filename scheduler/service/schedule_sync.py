"""Schedules a workflow declares (``trigger``/``triggers`` of type cron or interval).

Like event triggers (:mod:`.triggers`), only the *latest* published version of a workflow
counts. ``treadle beat`` calls :meth:`DeclaredSchedules.sync` before each reload: it asks
for the newest version of every definition (one short query) and looks only at
definitions whose version moved since it last looked, so a version published by any
process is picked up within beat's reload interval. For such a definition the stored
schedules with ``source = workflow`` are made to match its triggers:

* a declared schedule that is new is inserted (its cursor at now: it does not catch up on
  fires from before it existed); one whose name is taken by a schedule made through the
  CLI or API is left alone and reported;
* one whose definition changed is replaced (cursor moved to now, so the new rule starts
  from now; ``enabled`` follows the workflow only when the workflow says ``enabled``:
  a schedule an operator paused stays paused);
* one no longer declared (or whose workflow was deleted) is deleted with its fires.

A shared definition's schedules belong to the ``default`` workspace, a workspace's own
definition's to that workspace.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import ConflictError, TreadleError
from treadle.common.spec import TriggerSpec
from treadle.scheduler.service.definitions import SPEC_DOCUMENT
from treadle.scheduler.service.schedules import ScheduleInput, ScheduleSource, row_for
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.schedule_repo import ScheduleRow

__all__ = ["DeclaredSchedules", "declared_inputs"]

log = logging.getLogger("treadle.beat")

#: The columns a workflow's trigger decides (what "changed" compares).
_DECLARED = (
    "cron", "interval_seconds", "timezone", "start_at", "end_at", "jitter_seconds",
    "parameters", "overlap", "catchup_window_seconds", "missed", "pause_on_failure",
)  # fmt: skip


def declared_inputs(ref: str, raw_spec: Mapping[str, Any]) -> list[tuple[ScheduleInput, bool]]:
    """The schedules a stored spec document declares, each with whether the workflow set
    ``enabled`` itself. Unnamed ones are named ``<ref>``, then ``<ref>-2``, ``<ref>-3``..."""
    listed = raw_spec.get("triggers") or []
    given = [raw_spec.get("trigger"), *(listed if isinstance(listed, list) else [])]
    found: list[tuple[ScheduleInput, bool]] = []
    for raw in given:
        if not isinstance(raw, Mapping) or raw.get("type") not in ("cron", "interval"):
            continue
        trigger = TriggerSpec.model_validate(raw)
        number = len(found) + 1
        name = trigger.name or (ref if number == 1 else f"{ref}-{number}")
        schedule = ScheduleInput(
            name=name,
            workflow=ref,
            cron=trigger.cron if trigger.type == "cron" else None,
            interval=trigger.interval if trigger.type == "interval" else None,
            timezone=trigger.timezone,
            start=trigger.start,
            end=trigger.end,
            jitter=trigger.jitter,
            parameters=dict(trigger.parameters),
            overlap=trigger.overlap or "skip",
            catchup_window=trigger.catchup_window,
            missed=trigger.missed or "all",
            pause_on_failure=bool(trigger.pause_on_failure),
            enabled=trigger.enabled if trigger.enabled is not None else True,
        )
        found.append((schedule, trigger.enabled is not None))
    return found


class DeclaredSchedules:
    """Keeps the stored declared schedules in step with the latest workflow versions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], int] = {}

    def sync(self, uow: UnitOfWork, *, now: datetime) -> list[str]:
        """Bring the declared schedules up to date in ``uow``; the problems met (a name
        taken, a trigger that no longer checks), also logged."""
        latest = uow.latest_definition_versions()
        with self._lock:
            moved = {key: v for key, v in latest.items() if self._seen.get(key) != v}
        if not moved:
            return []
        stored: dict[tuple[str, str], list[ScheduleRow]] = {}
        for row in uow.list_schedules():
            if row.source == ScheduleSource.WORKFLOW:
                stored.setdefault((row.workspace, row.workflow), []).append(row)
        problems: list[str] = []
        for (owner, ref), version in sorted(moved.items()):
            workspace = owner or DEFAULT_WORKSPACE
            rows = stored.get((workspace, ref), [])
            if not rows or any(r.declared_version != version for r in rows):
                try:
                    problems.extend(self._replace(uow, owner, ref, version, rows, now=now))
                except ValueError as exc:  # a stored trigger that no longer reads (pydantic)
                    problems.append(f"workflow {ref} v{version}: its triggers: {exc}")
            uow.after_commit(functools.partial(self._note, (owner, ref), version))
        for problem in problems:
            log.warning("%s", problem)
        return problems

    def _note(self, key: tuple[str, str], version: int) -> None:
        with self._lock:
            self._seen[key] = version

    def _replace(
        self,
        uow: UnitOfWork,
        owner: str,
        ref: str,
        version: int,
        rows: list[ScheduleRow],
        *,
        now: datetime,
    ) -> list[str]:
        stored = uow.get_definition(ref, version, workspace=owner)
        raw = json.loads(stored.documents.get(SPEC_DOCUMENT, "{}"))
        workspace = owner or DEFAULT_WORKSPACE
        by_name = {row.name: row for row in rows}
        problems: list[str] = []
        wanted: set[str] = set()
        for given, sets_enabled in declared_inputs(ref, raw):
            wanted.add(given.name)
            try:
                fresh = row_for(
                    given,
                    workspace=workspace,
                    created_by=f"workflow:{ref}",
                    now=now,
                    source=ScheduleSource.WORKFLOW,
                    declared_version=version,
                )
                current = by_name.get(given.name)
                if current is None:
                    uow.insert_schedule(fresh)
                    log.info("schedule %s declared by %s v%d", given.name, ref, version)
                else:
                    _update(uow, current, fresh, sets_enabled=sets_enabled, now=now)
            except ConflictError:
                taken = uow.schedule(workspace, given.name)
                if taken is not None and taken.source == ScheduleSource.WORKFLOW:
                    continue  # another beat declared it at the same moment
                problems.append(
                    f"workflow {ref} v{version} declares schedule {given.name!r}, but "
                    f"workspace {workspace!r} has a schedule of that name made otherwise"
                )
            except TreadleError as exc:
                problems.append(f"workflow {ref} v{version}: schedule {given.name!r}: {exc}")
        for name, row in by_name.items():
            if name not in wanted:
                uow.delete_schedule(row.id)
                log.info("schedule %s no longer declared by %s v%d: deleted", name, ref, version)
        return problems


def _update(
    uow: UnitOfWork, current: ScheduleRow, fresh: ScheduleRow, *, sets_enabled: bool, now: datetime
) -> None:
    changed = {name: getattr(fresh, name) for name in _DECLARED}
    same = all(getattr(current, name) == value for name, value in changed.items())
    if same and not sets_enabled:
        uow.update_schedule(current.id, declared_version=fresh.declared_version)
        return
    values: dict[str, Any] = {**changed, "declared_version": fresh.declared_version}
    if not same:
        values.update(cursor=max(current.cursor, now), updated_at=now)
        log.info("schedule %s replaced by %s v%s", current.name, current.workflow,
                 fresh.declared_version)  # fmt: skip
    if sets_enabled and fresh.enabled != current.enabled:
        values.update(enabled=fresh.enabled, paused_reason=fresh.paused_reason)
    uow.update_schedule(current.id, **values)
