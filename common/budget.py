"""Budgets as data: what a run may spend, how the limits combine, and what a result cost.

A run's budget has four limits, each optional: ``cost_usd`` (US dollars its actions report
spending), ``wall_time`` (time since it started), ``attempts`` (attempts sent to workers,
retries included) and ``items`` (with_items items started). ``soft_ratio`` (0 < r < 1)
asks a person before the run goes past that share of a limit; ``step_cost_usd`` is the
ceiling of one step's cost for tasks that do not declare their own (``cost_ceiling_usd``).

Three sources give a run its budget (:func:`effective_budget`): the workflow declares one
(``budget:``), the start may give one (each limit it gives wins), and the deployment's
settings cap every run of a workspace (``TREADLE_BUDGET_LIMITS``, :class:`BudgetCeilings`):
a run gets the smaller of what it asks and the ceiling. ``docs/governance.md`` says how
the core enforces them.

Cost is in US dollars: a result reports ``cost_usd`` (workflows/v1), or ``cost_cents``
(AOS), which is converted (:func:`result_cost_usd`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from treadle.common.errors import ConfigurationError, ParameterError


class BudgetKind(StrEnum):
    """The limits of a budget; each names the field that sets it."""

    COST = "cost_usd"
    WALL_TIME = "wall_time"
    ATTEMPTS = "attempts"
    ITEMS = "items"


#: The fields of a budget, as ``budget:`` and ``--budget NAME=VALUE`` spell them.
BUDGET_FIELDS: Final = (
    "cost_usd",
    "wall_time",
    "attempts",
    "items",
    "soft_ratio",
    "step_cost_usd",
)


class Budget(BaseModel):
    """The limits of one run (every field optional; unset: no limit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    wall_time: timedelta | None = None
    attempts: int | None = Field(default=None, ge=1, strict=True)
    items: int | None = Field(default=None, ge=1, strict=True)
    soft_ratio: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False)
    step_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("wall_time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or isinstance(value, timedelta):
            return value
        if isinstance(value, str) and value.startswith("P"):
            return value  # ISO 8601, as the JSON encoding writes it
        # Imported here: the loader package imports the spec, which imports this module.
        from treadle.common.loader.durations import DurationError, parse_duration

        try:
            duration = parse_duration(value)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
        if duration.total_seconds() <= 0:
            raise ValueError("wall_time must be longer than 0")
        return duration

    def given(self) -> dict[str, Any]:
        """The fields that are set, by name."""
        return {
            name: getattr(self, name) for name in BUDGET_FIELDS if getattr(self, name) is not None
        }

    def overridden_by(self, other: Budget | None) -> Budget:
        """This budget with every field ``other`` sets taken from ``other``."""
        if other is None:
            return self
        return Budget(**{**self.given(), **other.given()})

    def capped_by(self, ceiling: Budget | None) -> Budget:
        """Each limit no higher than the ceiling's (a limit unset here takes the ceiling's);
        the ceiling's ``soft_ratio`` applies when this budget has none."""
        if ceiling is None:
            return self
        values = self.given()
        for name in ("cost_usd", "wall_time", "attempts", "items", "step_cost_usd"):
            cap = getattr(ceiling, name)
            if cap is not None:
                mine = values.get(name)
                values[name] = cap if mine is None else min(mine, cap)
        if values.get("soft_ratio") is None and ceiling.soft_ratio is not None:
            values["soft_ratio"] = ceiling.soft_ratio
        return Budget(**values)

    def above(self, ceiling: Budget | None) -> list[str]:
        """Each limit set here that is higher than the ceiling's, in words."""
        if ceiling is None:
            return []
        problems = []
        for name in ("cost_usd", "wall_time", "attempts", "items", "step_cost_usd"):
            mine, cap = getattr(self, name), getattr(ceiling, name)
            if mine is not None and cap is not None and mine > cap:
                problems.append(
                    f"{name}={show_limit(name, mine)} is above this workspace's limit of "
                    f"{show_limit(name, cap)} (TREADLE_BUDGET_LIMITS)"
                )
        return problems

    def as_json(self) -> dict[str, Any]:
        """The set fields, JSON-ready (``wall_time`` in seconds)."""
        values = self.given()
        if "wall_time" in values:
            values["wall_time"] = values["wall_time"].total_seconds()
        return values


def effective_budget(
    declared: Budget | None, given: Budget | None, ceiling: Budget | None
) -> Budget | None:
    """The budget a run gets: the workflow's, each limit the start gives winning, capped by
    the workspace's ceiling. ``None`` when nothing limits the run."""
    budget = (declared or Budget()).overridden_by(given).capped_by(ceiling)
    return None if not budget.given() else budget


def show_limit(name: str, value: Any) -> str:
    """A limit as people read it: ``12.50 USD``, ``90s``, ``40``."""
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if name in ("cost_usd", "step_cost_usd"):
        return usd(float(value))
    return str(value)


def usd(amount: float) -> str:
    """``12.5`` as ``12.50 USD`` (more digits for small amounts: ``0.0042 USD``)."""
    if amount and abs(amount) < 0.01:
        return f"{amount:.4f} USD"
    return f"{amount:.2f} USD"


def parse_budget(assignments: Iterable[str], *, subject: str = "--budget") -> Budget:
    """``["cost_usd=50", "wall_time=2h"]`` as a :class:`Budget`; a ParameterError naming
    each bad assignment (an unknown name, a bad value), so nothing is changed."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for text in assignments:
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not raw.strip():
            problems.append(f"{text!r}: write NAME=VALUE, NAME one of {', '.join(BUDGET_FIELDS)}")
            continue
        if name not in BUDGET_FIELDS:
            problems.append(
                f"{name!r} is not a budget limit; use one of {', '.join(BUDGET_FIELDS)}"
            )
            continue
        values[name] = _number(raw.strip()) if name != "wall_time" else raw.strip()
    try:
        budget = Budget.model_validate(values)
    except ValidationError as exc:
        problems.extend(_problems(exc))
    if problems:
        raise ParameterError(problems, subject=subject)
    return budget


def checked_budget(data: Any, *, subject: str = "budget") -> Budget:
    """``data`` (a mapping) as a :class:`Budget`; a ParameterError naming each bad field."""
    if isinstance(data, Budget):
        return data
    if not isinstance(data, Mapping):
        raise ParameterError([f"a budget is a mapping of limits, not {data!r}"], subject=subject)
    try:
        return Budget.model_validate(dict(data))
    except ValidationError as exc:
        raise ParameterError(_problems(exc), subject=subject) from None


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "budget"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"not a budget limit; use one of {', '.join(BUDGET_FIELDS)}"
        problems.append(f"{field}: {message}")
    return problems


class BudgetCeilings(BaseModel):
    """``TREADLE_BUDGET_LIMITS``: the limits of every run (``all``) and of the runs of
    particular workspaces (``workspaces``, whose fields win over ``all``'s)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    all: Budget | None = None
    workspaces: dict[str, Budget] = Field(default_factory=dict)

    def for_workspace(self, workspace: str) -> Budget | None:
        """The ceiling of the runs of ``workspace`` (``None``: no ceiling)."""
        own = self.workspaces.get(workspace)
        merged = (self.all or Budget()).overridden_by(own)
        return None if not merged.given() else merged


def ceilings_from_setting(value: str | None) -> BudgetCeilings:
    """The ceilings ``TREADLE_BUDGET_LIMITS`` gives: JSON, or the path of a JSON file; a
    ConfigurationError naming the variable and each bad field."""
    if value is None or not value.strip():
        return BudgetCeilings()
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"TREADLE_BUDGET_LIMITS: cannot read {value}: {exc}") from None
    try:
        return BudgetCeilings.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"TREADLE_BUDGET_LIMITS is not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(_problems(exc))
        raise ConfigurationError(f"TREADLE_BUDGET_LIMITS: {problems}") from None


#: The result keys that report what an attempt cost.
COST_KEYS: Final = ("cost_usd", "cost_cents")


def result_cost_usd(result: Any) -> float:
    """What a result says it cost, in USD: ``cost_usd``, else ``cost_cents`` / 100; 0 when
    it says nothing (or something that is not a finite, non-negative number)."""
    if not isinstance(result, Mapping):
        return 0.0
    usd_value = _amount(result.get("cost_usd"))
    if usd_value is not None:
        return usd_value
    cents = _amount(result.get("cost_cents"))
    return 0.0 if cents is None else cents / 100


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    amount = float(value)
    return amount if math.isfinite(amount) and amount >= 0 else None
