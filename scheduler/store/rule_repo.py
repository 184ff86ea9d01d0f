"""Rules and their matches as stored (``rules``, ``rule_matches``; migration 0016).

The rows only: what a rule says is :mod:`treadle.common.rules`; keeping the stored rules
in step with the packs is :mod:`treadle.scheduler.service.rule_sync`; starting a rule's
action and recording the match is :mod:`treadle.scheduler.service.rule_launch`. A match's
key is (rule, trigger key): :meth:`RuleRepository.record_match` inserts it only if no one
did, so a fire or an event delivered twice is one match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from treadle.common.errors import ConflictError
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.models import actions
from treadle.scheduler.store.rule_tables import rule_matches, rules

__all__ = ["MatchRow", "RuleRepository", "RuleRow"]


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One ``rules`` row, as stored."""

    id: str
    workspace: str
    ref: str
    name: str
    pack: str
    description: str | None
    enabled: bool
    trigger_type: str
    trigger_parameters: Mapping[str, Any]
    action_ref: str
    action_parameters: Mapping[str, Any]
    criteria: Sequence[str]
    source_file: str | None
    digest: str
    schedule_id: str | None
    note: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MatchRow:
    """One ``rule_matches`` row: a match, its outcome and (when it started one) its run."""

    id: str
    rule_id: str
    workspace: str
    trigger_key: str
    matched_at: datetime
    trigger_type: str
    event_id: str | None
    payload: Mapping[str, Any] | None
    payload_digest: str
    outcome: str
    run_id: str | None
    reason: str | None


_RULE_FIELDS = tuple(f.name for f in fields(RuleRow))
_MATCH_FIELDS = tuple(f.name for f in fields(MatchRow))
_JSON = ("trigger_parameters", "action_parameters")


def _rule(row: RowMapping) -> RuleRow:
    values = {name: row[name] for name in _RULE_FIELDS}
    for name in _JSON:
        values[name] = dict(values[name] or {})
    values["criteria"] = tuple(values["criteria"] or ())
    return RuleRow(**values)


def _values(row: RuleRow) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _RULE_FIELDS}
    for name in _JSON:
        values[name] = dict(values[name])
    values["criteria"] = list(row.criteria)
    return values


class RuleRepository(Repository):
    """Storing, finding and deleting rules; recording and reading their matches."""

    def insert_rule(self, row: RuleRow) -> None:
        """Store a new rule; ConflictError when its workspace has one of that ref."""
        try:
            with self._conn.begin_nested():
                self._conn.execute(rules.insert().values(**_values(row)))
        except IntegrityError:
            raise ConflictError(
                f"workspace {row.workspace!r} has a rule {row.ref!r} already"
            ) from None

    def replace_rule(self, row: RuleRow) -> None:
        """Write every column of a stored rule (found by id)."""
        values = _values(row)
        del values["id"]
        self._conn.execute(update(rules).where(rules.c.id == row.id).values(**values))

    def set_rule_enabled(self, rule_id: str, enabled: bool, *, at: datetime) -> None:
        self._conn.execute(
            update(rules).where(rules.c.id == rule_id).values(enabled=enabled, updated_at=at)
        )

    def find_rule(self, workspace: str | None, key: str) -> list[RuleRow]:
        """Rules whose ref, else whose name, is ``key`` (in ``workspace``; any when None)."""
        for column in (rules.c.ref, rules.c.name):
            stmt = select(rules).where(column == key)
            if workspace is not None:
                stmt = stmt.where(rules.c.workspace == workspace)
            found = self._conn.execute(stmt.order_by(rules.c.workspace, rules.c.ref)).mappings()
            rows = [_rule(row) for row in found]
            if rows:
                return rows
        return []

    def rule_by_schedule(self, schedule_id: str) -> RuleRow | None:
        """The timer rule whose schedule is ``schedule_id``."""
        stmt = select(rules).where(rules.c.schedule_id == schedule_id)
        row = self._conn.execute(stmt).mappings().first()
        return None if row is None else _rule(row)

    def list_rules(self, workspace: str | None = None) -> list[RuleRow]:
        """Rules by workspace and ref (one workspace's when given)."""
        stmt = select(rules).order_by(rules.c.workspace, rules.c.ref)
        if workspace is not None:
            stmt = stmt.where(rules.c.workspace == workspace)
        return [_rule(row) for row in self._conn.execute(stmt).mappings()]

    def event_rules(self, workspace: str, timer_types: Sequence[str]) -> list[RuleRow]:
        """The enabled rules of ``workspace`` on outside events (not timers), by ref."""
        stmt = (
            select(rules)
            .where(
                rules.c.workspace == workspace,
                rules.c.enabled.is_(True),
                rules.c.trigger_type.not_in(list(timer_types)),
            )
            .order_by(rules.c.ref)
        )
        return [_rule(row) for row in self._conn.execute(stmt).mappings()]

    def delete_rule(self, rule_id: str) -> None:
        """Remove a rule and its matches (its schedule is the caller's to delete)."""
        self._conn.execute(delete(rule_matches).where(rule_matches.c.rule_id == rule_id))
        self._conn.execute(delete(rules).where(rules.c.id == rule_id))

    def registered_action(self, ref: str) -> dict[str, Any] | None:
        """The registry's row of action ``ref`` (workflows included), if registered."""
        row = self._conn.execute(select(actions).where(actions.c.ref == ref)).mappings().first()
        return None if row is None else dict(row)

    # -- matches ------------------------------------------------------------------------------

    def record_match(self, match: MatchRow) -> bool:
        """Insert a match unless its key is recorded already; whether this call did."""
        values = {name: getattr(match, name) for name in _MATCH_FIELDS}
        values["payload"] = None if match.payload is None else dict(match.payload)
        try:
            with self._conn.begin_nested():
                self._conn.execute(rule_matches.insert().values(**values))
        except IntegrityError:
            return False
        return True

    def rule_matches(
        self, rule_id: str, *, limit: int = 100, outcome: str | None = None
    ) -> list[MatchRow]:
        """A rule's matches, newest first."""
        stmt = select(rule_matches).where(rule_matches.c.rule_id == rule_id)
        if outcome is not None:
            stmt = stmt.where(rule_matches.c.outcome == outcome)
        stmt = stmt.order_by(rule_matches.c.matched_at.desc(), rule_matches.c.id).limit(limit)
        found = self._conn.execute(stmt).mappings()
        return [
            MatchRow(**{name: row[name] for name in _MATCH_FIELDS}) for row in found
        ]  # fmt: skip

    def match_counts(self, rule_id: str) -> dict[str, int]:
        """How many matches of each outcome a rule has recorded."""
        rows = self._conn.execute(
            select(rule_matches.c.outcome, func.count())
            .where(rule_matches.c.rule_id == rule_id)
            .group_by(rule_matches.c.outcome)
        )
        return {str(outcome): int(count) for outcome, count in rows}

    def rules_of_packs(self, workspace: str, packs: Sequence[str]) -> list[RuleRow]:
        """The stored rules of ``packs`` in ``workspace``."""
        if not packs:
            return []
        stmt = select(rules).where(
            rules.c.workspace == workspace, or_(*(rules.c.pack == pack for pack in packs))
        )
        return [_rule(row) for row in self._conn.execute(stmt.order_by(rules.c.ref)).mappings()]
