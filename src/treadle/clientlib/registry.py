"""What the scheduler registered about packs and actions, as the client needs it.

A client loads no packs: it starts runs of definitions already published in the database.
Two things still depend on the actions a workflow calls, and the client reads them from the
registry the scheduler writes at start-up (``UnitOfWork.register_catalog``):

* when a definition is published, each action's runner kind (a ``workflow`` action starts a
  child run, any other goes to a worker) and declared parameters, for validation;
* when a run starts, the queue of each first task's action (``queue:`` in the action file),
  so its dispatch lands on the worker pool that serves it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from treadle.common.catalog import Catalog
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType
from treadle.scheduler.core.commands import DispatchTask

log = logging.getLogger("treadle.client")


def registry_catalog(rows: Sequence[Mapping[str, Any]]) -> Catalog:
    """The registered actions (workflows included) as a catalog of action specs.

    Only what publishing needs is kept: runner kind, parameters and queue. A row that does
    not fit the current models (a newer scheduler wrote it) is kept without parameters.
    """
    actions: dict[str, ActionSpec] = {}
    for row in rows:
        ref = str(row["ref"])
        try:
            kind = RunnerType(row.get("runner_type") or RunnerType.PYTHON.value)
        except ValueError:
            log.warning("registered action %s has an unknown runner type; skipped", ref)
            continue
        actions[ref] = ActionSpec(
            ref=ref,
            runner_type=kind,
            queue=row.get("queue"),
            parameters=_parameters(ref, row.get("parameters")),
        )
    return Catalog(actions=actions)


def _parameters(ref: str, raw: Any) -> tuple[ParameterSpec, ...]:
    if not isinstance(raw, list):
        return ()
    try:
        return tuple(ParameterSpec.model_validate(item) for item in raw)
    except ValidationError:
        log.warning("registered parameters of %s do not fit this Treadle; not checked", ref)
        return ()


def action_queues(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Action ref -> queue, for the registered actions that name their own queue."""
    return {str(row["ref"]): str(row["queue"]) for row in rows if row.get("queue")}


def queue_router(queues: Mapping[str, str], default_queue: str) -> Callable[[DispatchTask], str]:
    """The queue of a dispatch whose task names none: its action's queue, else the default."""

    def queue_for(command: DispatchTask) -> str:
        return queues.get(command.dispatch.action_ref, default_queue)

    return queue_for
