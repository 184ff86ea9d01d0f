"""Which runs a principal may see and control: the one place workspaces will narrow it.

Every run route goes through :func:`run_scope`: listings filter with
:meth:`RunScope.listing` (inquiry listings with :meth:`RunScope.inquiries`), and a route
naming a run checks it with :meth:`RunScope.check` before reading or changing it (a run of
another workspace will be a 404, as if it did not exist, so its id leaks nothing). Runs do
not carry a workspace yet, so the scope admits every run for now.
"""

from __future__ import annotations

from dataclasses import dataclass

from treadle.common.access import Principal
from treadle.scheduler.store import RunFilter, UnitOfWork
from treadle.scheduler.store.inquiry_repo import InquiryFilter

__all__ = ["RunScope", "WorkflowScope", "run_scope", "workflow_scope"]


@dataclass(frozen=True)
class RunScope:
    """The runs one principal may see; ``workspace`` None admits them all."""

    workspace: str | None

    def listing(self, where: RunFilter) -> RunFilter:
        """``where`` narrowed to the runs of this scope."""
        return where

    def inquiries(self, where: InquiryFilter) -> InquiryFilter:
        """``where`` narrowed to the inquiries of this scope's runs."""
        return where

    def check(self, uow: UnitOfWork, run_id: str) -> None:
        """NotFound unless ``run_id`` is in this scope (an unknown run is found later)."""
        del uow, run_id


def run_scope(principal: Principal) -> RunScope:
    """The runs ``principal`` may see and control."""
    # workspaces: issue 10 follow-up. Runs have no workspace column yet, so every principal
    # sees every run. Once they do: return RunScope(principal.workspace) here, filter on it
    # in RunScope.listing (RunFilter gets a workspace field) and RunScope.inquiries (a join
    # on the inquiry's run), and raise NotFound in RunScope.check for a run of another
    # workspace.
    del principal
    return RunScope(workspace=None)


@dataclass(frozen=True)
class WorkflowScope:
    """The workflows (and packs) one principal may see and change; ``workspace`` None
    admits them all. The workflows routes check every ref they name with :meth:`check`
    and keep what listings show with :meth:`admits`."""

    workspace: str | None

    def admits(self, ref: str) -> bool:
        """Whether listings show the workflow ``ref``."""
        del ref
        return True

    def check(self, uow: UnitOfWork, ref: str) -> None:
        """NotFound unless the workflow ``ref`` is in this scope."""
        del uow, ref


def workflow_scope(principal: Principal) -> WorkflowScope:
    """The workflows ``principal`` may see and change."""
    # workspaces: definitions carry no workspace yet, so every principal sees every
    # workflow. Once they do: return WorkflowScope(principal.workspace), filter listings on
    # it in the store (not after paging) and raise NotFound in WorkflowScope.check.
    del principal
    return WorkflowScope(workspace=None)
