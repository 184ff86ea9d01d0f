"""Which runs a principal may see and change: its workspace's, and no others.

Every run route goes through :func:`run_scope`: listings filter with
:meth:`RunScope.listing` (inquiry listings with :meth:`RunScope.inquiries`), and a route
naming a run checks it with :meth:`RunScope.check` before reading or changing it. A run of
another workspace is a 404 with the very message an unknown run gets, so its id leaks
nothing.

Workflows keep to workspaces in :mod:`treadle.clientlib` itself, since the CLI reads them
too: each view takes the workspace looking (``default`` for the CLI), which sees its own
workflows (created through the API) and the shared ones (from the server's pack paths, the
CLI and clients), its own first when both have a ref; another workspace's are 404.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from treadle.common.access import Principal
from treadle.common.errors import NotFound
from treadle.scheduler.store import RunFilter, UnitOfWork
from treadle.scheduler.store.inquiry_repo import InquiryFilter

__all__ = ["RunScope", "run_scope"]


@dataclass(frozen=True)
class RunScope:
    """The runs of one workspace."""

    workspace: str

    def listing(self, where: RunFilter) -> RunFilter:
        """``where`` narrowed to the runs of this scope."""
        return dataclasses.replace(where, workspace=self.workspace)

    def inquiries(self, where: InquiryFilter) -> InquiryFilter:
        """``where`` narrowed to the inquiries of this scope's runs."""
        return dataclasses.replace(where, workspace=self.workspace)

    def check(self, uow: UnitOfWork, run_id: str) -> None:
        """NotFound unless ``run_id`` is in this scope (an unknown run is found later)."""
        workspace = uow.run_workspace(run_id)
        if workspace is not None and workspace != self.workspace:
            raise NotFound(f"run {run_id} not found")


def run_scope(principal: Principal) -> RunScope:
    """The runs ``principal`` may see and control: those of its workspace."""
    return RunScope(workspace=principal.workspace)
