"""Which runs a principal may see and control: the one place workspaces will narrow it.

Every run route goes through :func:`run_scope`: listings filter with
:meth:`RunScope.listing`, and a route naming a run checks it with :meth:`RunScope.check`
before reading or changing it (a run of another workspace will be a 404, as if it did not
exist, so its id leaks nothing). Runs do not carry a workspace yet, so the scope admits
every run for now.
"""

from __future__ import annotations

from dataclasses import dataclass

from treadle.common.access import Principal
from treadle.scheduler.store import RunFilter, UnitOfWork

__all__ = ["RunScope", "run_scope"]


@dataclass(frozen=True)
class RunScope:
    """The runs one principal may see; ``workspace`` None admits them all."""

    workspace: str | None

    def listing(self, where: RunFilter) -> RunFilter:
        """``where`` narrowed to the runs of this scope."""
        return where

    def check(self, uow: UnitOfWork, run_id: str) -> None:
        """NotFound unless ``run_id`` is in this scope (an unknown run is found later)."""
        del uow, run_id


def run_scope(principal: Principal) -> RunScope:
    """The runs ``principal`` may see and control."""
    # workspaces: issue 10 follow-up. Runs have no workspace column yet, so every principal
    # sees every run. Once they do: return RunScope(principal.workspace) here, filter on it
    # in RunScope.listing (RunFilter gets a workspace field) and raise NotFound in
    # RunScope.check for a run of another workspace.
    del principal
    return RunScope(workspace=None)
