"""Looking at and switching rules: find, enable, disable, and their JSON shapes.

``treadle rules`` (CLI) and ``/api/v1/rules`` (API) both use these, so they find a rule
the same way (its ref, else its name) and show the same fields. A timer rule's schedule is
paused and resumed with it. Where rules come from is :mod:`.rule_sync`; what a match does
is :mod:`.rule_launch`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from treadle.common.errors import ConflictError, NotFound
from treadle.scheduler.service.rule_sync import DISABLED
from treadle.scheduler.service.schedules import next_fire
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.rule_repo import MatchRow, RuleRow

__all__ = ["find", "set_enabled", "shown", "shown_match"]


def find(uow: UnitOfWork, key: str, *, workspace: str | None) -> RuleRow:
    """The rule whose ref (else name) is ``key``; NotFound, or ConflictError when a name
    is shared by rules of several refs (give the ref)."""
    found = uow.find_rule(workspace, key)
    if not found:
        where = f" in workspace {workspace!r}" if workspace is not None else ""
        raise NotFound(f"no rule named {key!r}{where}")
    if len(found) > 1:
        refs = ", ".join(row.ref for row in found)
        raise ConflictError(f"several rules are named {key!r} ({refs}): give the ref")
    return found[0]


def set_enabled(
    uow: UnitOfWork, key: str, enabled: bool, *, workspace: str | None, now: datetime
) -> RuleRow:
    """Enable or disable a rule (and pause or resume its timer's schedule). A disabled
    rule matches nothing: its timer's fires are ``skipped_paused``, events pass it by."""
    row = find(uow, key, workspace=workspace)
    uow.set_rule_enabled(row.id, enabled, at=now)
    if row.schedule_id is not None:
        reason = None if enabled else DISABLED
        uow.update_schedule(row.schedule_id, enabled=enabled, paused_reason=reason,
                            updated_at=now)  # fmt: skip
    return replace(row, enabled=enabled, updated_at=now)


def shown(uow: UnitOfWork, row: RuleRow, *, now: datetime, counts: bool = False) -> dict[str, Any]:
    """A rule as JSON, with its timer's schedule and next fire (and its matches counted
    by outcome when ``counts``)."""
    schedule = uow.schedule_by_id(row.schedule_id) if row.schedule_id else None
    upcoming = next_fire(schedule, now) if schedule is not None else None
    return {
        "ref": row.ref,
        "name": row.name,
        "workspace": row.workspace,
        "pack": row.pack,
        "description": row.description,
        "enabled": row.enabled,
        "trigger": {"type": row.trigger_type, "parameters": dict(row.trigger_parameters)},
        "action": {"ref": row.action_ref, "parameters": dict(row.action_parameters)},
        "criteria": list(row.criteria),
        "schedule": schedule.name if schedule is not None else None,
        "next_fire": upcoming.isoformat() if upcoming is not None else None,
        "note": row.note,
        "source": row.source_file,
        "matches": uow.match_counts(row.id) if counts else None,
        "updated_at": row.updated_at.isoformat(),
    }


def shown_match(match: MatchRow) -> dict[str, Any]:
    """A match as JSON: when, what matched, what happened."""
    return {
        "matched_at": match.matched_at.isoformat(),
        "trigger_key": match.trigger_key,
        "trigger_type": match.trigger_type,
        "event_id": match.event_id,
        "outcome": match.outcome,
        "run_id": match.run_id,
        "reason": match.reason,
        "payload": dict(match.payload) if match.payload is not None else None,
        "payload_digest": match.payload_digest,
    }
