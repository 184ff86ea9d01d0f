"""A run's variable context: the parameters it started with and the variables it published.

The Attune plan's ``GET /workflow-executions/{id}/context``: what templates of the run read
as ``parameters.*`` and ``workflow.*`` (alias ``vars.*``) now. Secret parameters show as
``***`` (their names are listed in ``secret_parameters``), and any value of the run's
secrets (secret parameters, secret keystore entries it read) is masked wherever it was
copied, as in the run document. Task results are in the run document, not here.

Shape (``docs/api.md``)::

    {run, workflow, status, parameters, vars, secret_parameters: [name]}
"""

from __future__ import annotations

from typing import Any

from treadle.common.redaction import REDACTED, redact
from treadle.scheduler.service.run_document import run_secrets
from treadle.scheduler.store import UnitOfWork

__all__ = ["run_context"]

_KEYSTORE = "keystore."


def run_context(uow: UnitOfWork, run_id: str) -> dict[str, Any]:
    """The variable context of ``run_id``, secrets masked (NotFound for an unknown run)."""
    state = uow.load_run_overview(run_id, failures=0).state
    context = state.context
    secret = {name for name in context.secrets if not name.startswith(_KEYSTORE)}
    shown = {
        "run": state.run_id,
        "workflow": state.workflow,
        "status": state.status.value,
        "parameters": {
            name: REDACTED if name in secret else value
            for name, value in context.parameters.items()
        },
        "vars": dict(state.vars),
        "secret_parameters": sorted(secret),
    }
    masked: dict[str, Any] = redact(shown, run_secrets(state))
    return masked
