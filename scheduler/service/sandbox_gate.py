"""The sandbox at the start of a run: check, refuse with the report, count.

:class:`SandboxGate` is what :class:`~treadle.scheduler.service.starting.RunStarter` asks
before it stores anything: which policy a run of this workflow in this workspace is
checked under (AOS plans always; other workflows where ``TREADLE_SANDBOX_POLICY`` says),
and whether its definition and parameters pass (:func:`treadle.common.sandbox_check.check_start`).
A refused start raises :class:`~treadle.common.sandbox_report.SandboxRefusal` carrying
the report; the policy of an accepted one goes into the run's context, so the core checks
each rendered input against it at dispatch. Every check is told to the run service's
observers that count it (:class:`SandboxObserver`: the ``treadle_sandbox_*`` metrics).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from treadle.common.catalog import Catalog
from treadle.common.graph import Graph, compile_graph
from treadle.common.sandbox_check import check_start
from treadle.common.sandbox_policy import SandboxPolicies, SandboxPolicy
from treadle.common.sandbox_report import SandboxRefusal, SandboxReport
from treadle.common.spec import WorkflowSpec


@runtime_checkable
class SandboxObserver(Protocol):
    """Told of every start the sandbox checked (the metrics count it)."""

    def sandbox_checked(self, report: SandboxReport) -> None: ...


class SandboxGate:
    """The policies in force, applied to the starts of runs."""

    def __init__(self, policies: SandboxPolicies | None = None) -> None:
        self.policies = policies or SandboxPolicies()

    def policy_for(self, spec: WorkflowSpec, workspace: str) -> SandboxPolicy | None:
        return self.policies.for_workflow(spec.dialect, workspace)

    def check(
        self,
        spec: WorkflowSpec,
        parameters: Mapping[str, Any],
        *,
        workspace: str,
        graph: Graph | None,
        catalog: Catalog,
        observers: Iterable[object] = (),
    ) -> SandboxPolicy | None:
        """The policy the run goes on under (``None``: not checked), or SandboxRefusal.

        ``graph`` is the definition compiled with its pinned routes (``None``: compiled
        here as the catalog routes it, for a definition about to be published).
        """
        policy = self.policy_for(spec, workspace)
        if policy is None:
            return None
        graph = graph if graph is not None else _routed(spec, catalog)
        report = check_start(graph, policy, parameters, action_of=catalog.actions.get)
        for observer in observers:
            if isinstance(observer, SandboxObserver):
                observer.sandbox_checked(report)
        if not report.valid:
            raise SandboxRefusal(report, workflow=spec.ref)
        return policy


def _routed(spec: WorkflowSpec, catalog: Catalog) -> Graph:
    """``spec`` compiled with each action's runner and side effects as ``catalog`` says."""

    def effects_of(ref: str) -> bool:
        action = catalog.actions.get(ref)
        return action is not None and action.side_effects

    return compile_graph(spec, catalog.kind_of, effects_of=effects_of)
