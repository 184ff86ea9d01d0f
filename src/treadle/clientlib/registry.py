"""What the scheduler registered about packs and actions, as the client needs it.

A client loads no packs: it starts runs of definitions already published in the database.
When it publishes a definition itself, it reads what the scheduler registered at start-up
(``UnitOfWork.register_catalog``): each action's runner kind (a ``workflow`` action starts a
child run, any other goes to a worker), its queue, and its declared parameters. The kind
and queue are pinned in the published version, so every run of it routes the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from treadle.common.catalog import Catalog
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType

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
