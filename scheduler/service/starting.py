"""Starting runs: check the parameters once, publish the definition, create the run.

A refused start (bad parameters, unknown workflow, a definition that cannot run) stores
nothing. The run's context (parameters, pack config, keystore, identity, the names of its
secrets, its seed and limits) is fixed here, once, and the first ``RunRequested`` is
applied in the same transaction that creates the run row, so a run never exists half
started. Child runs are created the same way, inside the relay's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.budget import Budget, BudgetCeilings
from treadle.common.errors import ParameterError
from treadle.common.flow import checked_priority
from treadle.common.graph import Graph
from treadle.common.limits import Limits
from treadle.common.params import resolve_parameters, secret_names
from treadle.common.redaction import without_secret_values
from treadle.common.sandbox_policy import SandboxPolicies, SandboxPolicy
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.core.events import RunRequested
from treadle.scheduler.core.state import RunContext, RunState, initial_state
from treadle.scheduler.service.definitions import PinnedDefinition, owner_when_publishing
from treadle.scheduler.service.deletions import check_startable
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.sandbox_gate import SandboxGate
from treadle.scheduler.service.secret_context import (
    keystore_snapshot,
    new_secret_tag,
    seal_parameters,
)
from treadle.scheduler.store import DuplicateRunError, KeyValue, UnitOfWork


def new_run_id() -> str:
    return f"r-{uuid.uuid4().hex[:16]}"


def random_seed() -> int:
    return uuid.uuid4().int & 0x7FFF_FFFF


#: Seeds a start may choose: 0 <= seed < MAX_SEED (a signed 64-bit integer).
MAX_SEED = 2**63


def checked_seed(seed: int | None) -> int | None:
    """``seed`` if it is one or ``None``; a ParameterError naming it otherwise."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise ParameterError(
            [f"seed must be an integer from 0 to {MAX_SEED - 1}, not {seed!r}"], subject="seed"
        )
    return seed


@dataclass(frozen=True)
class RunOptions:
    """Who starts a run and how: identity, idempotency, the event that triggered it, and
    the workspace the run belongs to (an idempotency key counts within it)."""

    identity: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    trigger_event_id: str | None = None
    workspace: str = DEFAULT_WORKSPACE
    #: ``{name, fire_time}`` of the schedule fire starting the run (``system.schedule``).
    schedule: Mapping[str, Any] | None = None
    #: 0-9, 9 first; ``None``: the workflow's own priority, else 5 (``docs/flow-control.md``).
    priority: int | None = None
    #: The run's seed (``system.seed``, per-step seeds, ``uuid()``); ``None``: a random one.
    seed: int | None = None
    #: Budget limits for this run: each one set wins over the workflow's (capped by the
    #: workspace's ceiling, ``docs/governance.md``).
    budget: Budget | None = None

    def __post_init__(self) -> None:
        checked_priority(self.priority)  # a ParameterError naming it, before anything starts
        checked_seed(self.seed)


@dataclass(frozen=True)
class SharedReads:
    """What the contexts of runs started in one transaction read alike: the workspace's
    keystore entries and the pack's configuration (read once for a batch)."""

    keystore: Sequence[KeyValue]
    config: Mapping[str, object]


@dataclass(frozen=True)
class StartedRun:
    """The run a start asked for: its id, and whether this start created it (``False``
    when its idempotency key named a run started before)."""

    run_id: str
    created: bool


@dataclass(frozen=True)
class ChildRun:
    """A child run to create for a parent's task (see :meth:`RunStarter.start_child`)."""

    run_id: str
    parent_run_id: str
    parent_attempt_id: str
    depth: int
    identity: Mapping[str, Any]
    #: The parent's workspace, which the child belongs to.
    workspace: str = DEFAULT_WORKSPACE
    #: The reference tag of the parent's tree (see ``secret_context``); "" draws a new one.
    secret_tag: str = ""


class RunStarter:
    """Creates runs of published definitions and applies their first event."""

    def __init__(
        self,
        runs: RunService,
        *,
        limits: Limits | None = None,
        run_ids: Callable[[], str] = new_run_id,
        seeds: Callable[[], int] = random_seed,
        secret_tags: Callable[[], str] = new_secret_tag,
        sandbox: SandboxPolicies | None = None,
        budgets: BudgetCeilings | None = None,
    ) -> None:
        self.runs = runs
        self.definitions = runs.definitions
        self.limits = limits or Limits()
        #: The budget ceilings of each workspace's runs (``TREADLE_BUDGET_LIMITS``).
        self.budgets = budgets or BudgetCeilings()
        #: The sandbox policies runs start under (``TREADLE_SANDBOX_POLICY``).
        self.sandbox = SandboxGate(sandbox)
        self._run_ids = run_ids
        self._seeds = seeds
        self._secret_tags = secret_tags

    @classmethod
    def from_settings(cls, runs: RunService, settings: Settings) -> RunStarter:
        """A starter with the settings' run limits, sandbox policies and budget ceilings."""
        return cls(
            runs,
            limits=settings.limits,
            sandbox=settings.sandbox_policies(),
            budgets=settings.budget_ceilings(),
        )

    def prepare_parameters(
        self, spec: WorkflowSpec, parameters: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Validated parameters with defaults; raises ParameterError and stores nothing.

        A problem with a ``secret`` parameter names the rule its value breaks, never the
        value: the message is printed by the CLI and kept in a parent task's error.
        """
        subject = f"parameters of '{spec.ref}'"
        try:
            return resolve_parameters(spec.parameters, parameters, subject=subject)
        except ParameterError as exc:
            if not any(p.secret for p in spec.parameters):
                raise
            problems = without_secret_values(exc.problems, spec.parameters, dict(parameters))
            raise ParameterError(problems, subject=subject) from None

    def start(
        self,
        spec: WorkflowSpec,
        parameters: Mapping[str, Any],
        options: RunOptions | None = None,
        *,
        graph: Graph | None = None,
    ) -> str:
        """Check parameters, publish the definition (a new version only if it changed),
        create the run and start it. Bad parameters are refused before publishing.

        ``graph`` is ``spec`` compiled by validation with the catalog's routes, if the
        caller has it: publishing then compiles nothing.
        """
        resolved = self.prepare_parameters(spec, parameters)
        identity = (options.identity if options is not None else None) or {}
        author = str(identity.get("login") or "") or None  # who published this version
        options = options or RunOptions()
        policy = self.check_sandbox(spec, resolved, options.workspace, graph)
        with self.runs.store.unit_of_work() as uow:
            owner = owner_when_publishing(uow, spec.ref, options.workspace)
        pinned = self.definitions.publish(
            spec, at=self.runs.clock(), author=author, graph=graph, workspace=owner
        )
        return self._create(pinned, resolved, options, policy)

    def check_sandbox(
        self,
        spec: WorkflowSpec,
        resolved: Mapping[str, Any],
        workspace: str,
        graph: Graph | None = None,
    ) -> SandboxPolicy | None:
        """The sandbox policy the run starts under (``None``: not checked); a
        SandboxRefusal with the report, before anything is stored, when it breaks it."""
        return self.sandbox.check(
            spec,
            resolved,
            workspace=workspace,
            graph=graph,
            catalog=self.definitions.catalog,
            observers=self.runs.observers,
        )

    def start_pinned(
        self,
        pinned: PinnedDefinition,
        parameters: Mapping[str, Any],
        options: RunOptions | None = None,
    ) -> str:
        """Create and start a run of a published definition version.

        Parameters are checked first: a refused request stores nothing. Starting twice with
        one idempotency key returns the first run's id, even when both starts race. A
        workflow deleted since (its latest version a tombstone) raises WorkflowDeleted.
        """
        resolved = self.prepare_parameters(pinned.spec, parameters)
        options = options or RunOptions()
        policy = self.check_sandbox(pinned.spec, resolved, options.workspace, pinned.graph)
        return self._create(pinned, resolved, options, policy)

    def start_pinned_in(
        self,
        uow: UnitOfWork,
        pinned: PinnedDefinition,
        parameters: Mapping[str, Any],
        options: RunOptions | None = None,
    ) -> StartedRun:
        """:meth:`start_pinned` in the caller's transaction (the HTTP API's, which records
        the start in the audit log with it), telling whether this call created the run."""
        resolved = self.prepare_parameters(pinned.spec, parameters)
        options = options or RunOptions()
        policy = self.check_sandbox(pinned.spec, resolved, options.workspace, pinned.graph)
        return self._create_in(uow, pinned, resolved, options, policy)

    def _create(
        self,
        pinned: PinnedDefinition,
        resolved: Mapping[str, Any],
        options: RunOptions,
        policy: SandboxPolicy | None,
    ) -> str:
        with self.runs.store.unit_of_work() as uow:
            return self._create_in(uow, pinned, resolved, options, policy).run_id

    def start_many_in(
        self,
        uow: UnitOfWork,
        pinned: PinnedDefinition,
        parameter_sets: Sequence[Mapping[str, Any]],
        options: RunOptions | None = None,
    ) -> list[str]:
        """Start one run of ``pinned`` per parameter set in the caller's transaction, their
        first steps decided and saved together (one statement per table for all of them,
        as the scheduler saves a batch of results). Every set is checked before anything
        is stored: a bad one raises ParameterError (or SandboxRefusal) naming its position.
        Idempotency keys are per run, so a batch takes none."""
        options = options or RunOptions()
        if options.idempotency_key is not None:
            raise ParameterError(
                ["a batch of runs takes no idempotency key"], subject="batch start"
            )
        checked: list[tuple[dict[str, Any], SandboxPolicy | None]] = []
        for position, parameters in enumerate(parameter_sets):
            try:
                resolved = self.prepare_parameters(pinned.spec, parameters)
                policy = self.check_sandbox(pinned.spec, resolved, options.workspace, pinned.graph)
            except ParameterError as exc:  # (a SandboxRefusal too, its report kept)
                exc.subject = f"{exc.subject} [{position}]"
                exc.args = (f"invalid {exc.subject}: " + "; ".join(exc.problems),)
                raise
            checked.append((resolved, policy))
        ceiling = self._admit(pinned, options)
        check_startable(uow, pinned.ref, pinned.workspace)
        shared = self.shared_reads(uow, pinned.spec, options.workspace)
        first = [
            self._insert_in(
                uow, pinned, resolved, options, policy=policy, ceiling=ceiling, shared=shared
            )
            for resolved, policy in checked
        ]
        if first:
            self.runs.apply_new_many(uow, first)
        return [state.run_id for state, _ in first]

    def _admit(self, pinned: PinnedDefinition, options: RunOptions) -> Budget | None:
        """The workspace's budget ceiling, after checking the start's budget against it."""
        ceiling = self.budgets.for_workspace(options.workspace)
        if options.budget is not None:
            above = options.budget.above(ceiling)
            if above:
                raise ParameterError(above, subject=f"budget of the run of '{pinned.ref}'")
        return ceiling

    def _create_in(
        self,
        uow: UnitOfWork,
        pinned: PinnedDefinition,
        resolved: Mapping[str, Any],
        options: RunOptions,
        policy: SandboxPolicy | None,
    ) -> StartedRun:
        ceiling = self._admit(pinned, options)
        if options.idempotency_key is not None:
            existing = uow.find_run_by_idempotency_key(options.idempotency_key, options.workspace)
            if existing is not None:
                return StartedRun(existing, created=False)
        check_startable(uow, pinned.ref, pinned.workspace)  # a deleted workflow starts no run
        try:  # a duplicate leaves the caller's transaction usable
            state, event = self._insert_in(
                uow, pinned, resolved, options, policy=policy, ceiling=ceiling
            )
        except DuplicateRunError as exc:
            if exc.existing_run_id is None:
                raise
            return StartedRun(exc.existing_run_id, created=False)
        self.runs.apply_new(uow, state, event)
        return StartedRun(state.run_id, created=True)

    def _insert_in(
        self,
        uow: UnitOfWork,
        pinned: PinnedDefinition,
        resolved: Mapping[str, Any],
        options: RunOptions,
        *,
        policy: SandboxPolicy | None,
        ceiling: Budget | None,
        shared: SharedReads | None = None,
    ) -> tuple[RunState, RunRequested]:
        """Insert the run's row and fix its context: the run and its first event, to apply."""
        run_id = self._run_ids()
        state = initial_state(
            run_id, pinned.ref, self.runs.clock(), pinned.version, options.workspace
        )
        uow.insert_run(
            state,
            definition_version=pinned.version,
            idempotency_key=options.idempotency_key,
            trigger_event_id=options.trigger_event_id,
        )
        context = self.context(
            uow,
            pinned.spec,
            resolved,
            options.identity,
            depth=0,
            run_id=run_id,
            workspace=options.workspace,
            shared=shared,
        )
        if options.schedule is not None:
            context = replace(context, schedule=dict(options.schedule))
        if options.priority is not None:
            context = replace(context, priority=options.priority)
        if options.seed is not None:
            context = replace(context, seed=options.seed)
        context = replace(context, budget=options.budget, budget_ceiling=ceiling)
        return state, RunRequested(context=replace(context, sandbox=policy))

    def start_child(
        self,
        uow: UnitOfWork,
        pinned: PinnedDefinition,
        parameters: Mapping[str, Any],
        child: ChildRun,
    ) -> None:
        """Create and start a child run in ``uow`` (parameters already checked)."""
        state = initial_state(
            child.run_id, pinned.ref, self.runs.clock(), pinned.version, child.workspace
        )
        uow.insert_run(state, definition_version=pinned.version)
        context = self.context(
            uow,
            pinned.spec,
            parameters,
            child.identity,
            depth=child.depth,
            parent_run_id=child.parent_run_id,
            parent_attempt_id=child.parent_attempt_id,
            run_id=child.run_id,
            secret_tag=child.secret_tag,
            workspace=child.workspace,
        )
        # A child run is not checked at its start (its parameters are its parent's rendered
        # input); its attempts are checked at dispatch under its workflow's policy.
        context = replace(
            context,
            sandbox=self.sandbox.policy_for(pinned.spec, child.workspace),
            budget_ceiling=self.budgets.for_workspace(child.workspace),
        )
        self.runs.apply_new(uow, state, RunRequested(context=context))

    def shared_reads(self, uow: UnitOfWork, spec: WorkflowSpec, workspace: str) -> SharedReads:
        """What every run of ``spec`` in ``workspace`` started in ``uow`` reads alike."""
        return SharedReads(
            uow.kv_list(workspace=workspace), self.definitions.pack_config(spec.pack, uow)
        )

    def context(
        self,
        uow: UnitOfWork,
        spec: WorkflowSpec,
        parameters: Mapping[str, Any],
        identity: Mapping[str, Any] | None,
        *,
        depth: int,
        parent_run_id: str | None = None,
        parent_attempt_id: str | None = None,
        run_id: str = "",
        secret_tag: str = "",
        workspace: str = DEFAULT_WORKSPACE,
        shared: SharedReads | None = None,
    ) -> RunContext:
        """What the run's templates may read besides results, fixed now.

        Secrets enter it as references only (``secret_context``): the values of secret
        parameters of run ``run_id`` are encrypted into its ``run_secrets`` rows.
        ``shared``: the keystore and pack configuration read once for a batch of runs.
        """
        shared = shared or self.shared_reads(uow, spec, workspace)
        tag = secret_tag or self._secret_tags()
        keystore, secret_keys = keystore_snapshot(shared.keystore, tag)
        sealed = seal_parameters(uow, spec.parameters, parameters, run_id=run_id, tag=tag)
        return RunContext(
            parameters=sealed,
            config=shared.config,
            keystore=keystore,
            identity=dict(identity or {}),
            secrets=secret_names(spec.parameters) + secret_keys,
            seed=self._seeds(),
            limits=self.limits,
            depth=depth,
            parent_run_id=parent_run_id,
            parent_attempt_id=parent_attempt_id,
            secret_tag=tag,
        )
