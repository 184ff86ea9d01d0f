"""The serialisable state of one run, as the pure core sees it.

Everything is a frozen dataclass and every collection is treated as immutable: ``decide``
copies what it changes and shares the rest. Two consequences the store relies on: an
execution or unit that did not change is the *same object* in the old and new state, so
the store diffs by identity and writes only what changed; and a state can be kept in
memory across events without defensive copies.

Vocabulary: a task may run several times (cycles, several inbound transitions), each time
as an :class:`Execution`. An execution does its work in :class:`Unit` s: one for a plain
task, one per item (or batch) for ``with_items``. Each unit is tried in numbered attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, overload

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.budget import Budget
from treadle.common.limits import Limits
from treadle.common.sandbox_policy import SandboxPolicy
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.budget_state import BudgetState

_T = TypeVar("_T")
_FIELDS: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def evolve(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the slotted state classes, several times faster.

    The core updates units and executions thousands of times per second; the standard
    ``replace`` re-runs ``__init__`` with keyword checks and costs ~14 µs, this ~2 µs.
    Unknown field names raise ``TypeError`` like ``replace`` does.
    """
    cls = type(obj)
    known = _FIELDS.get(cls)
    if known is None:
        names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        known = _FIELDS[cls] = (names, frozenset(names))
    names, name_set = known
    if not changes.keys() <= name_set:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(set(changes) - name_set)}")
    new = object.__new__(cls)
    setter = object.__setattr__
    for name in names:
        setter(new, name, changes[name] if name in changes else getattr(obj, name))
    return new


#: Scope key of the top level of a workflow; parallel blocks use their execution id (>= 1).
ROOT_SCOPE = 0


class TimerKind(StrEnum):
    """What a timer does when it fires."""

    DELAY = "delay"  # start a scheduled execution
    RETRY = "retry"  # launch the next attempt of a unit
    TIMEOUT = "timeout"  # an attempt ran past the task's timeout
    DEADLINE = "deadline"  # an inquiry or an event wait ran past its timeout


@dataclass(frozen=True, slots=True)
class Timer:
    """A pending timer owned by the run; the service stores it and reports when it fires."""

    id: str
    kind: TimerKind
    fire_at: datetime
    execution: int
    unit: int | None = None
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Unit:
    """One call of a task: the whole task, or one with_items item or batch.

    ``index`` is ``None`` for a plain task. ``attempt`` counts attempts started (0 before the
    first; it keeps counting across manual retries, so attempt ids stay unique). A unit
    of ``core.wait_for_event`` keeps the rendered event it waits for in
    ``waits_for`` (``{type, subject, filter}``).
    """

    index: int | None
    item: Any = None
    status: TaskStatus = TaskStatus.SCHEDULED
    attempt: int = 0
    result: Any = None
    error: Mapping[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timer: str | None = None
    inquiry_id: str | None = None
    child_run_id: str | None = None
    result_bytes: int = 0
    waits_for: Mapping[str, Any] | None = None
    #: Attempts made before the run was last retried by an operator: the task's retry
    #: policy counts from here, so a manual retry gets the whole retry budget again.
    retry_base: int = 0


class Units(Sequence["Unit"]):
    """An immutable list of units stored in fixed-size chunks (a small persistent vector).

    Replacing one unit copies one chunk and the chunk index instead of the whole list, so
    a 5000-item execution updates in microseconds; unchanged chunks are shared by identity,
    which lets the store skip them when it writes what changed.
    """

    __slots__ = ("_chunks", "_length")
    CHUNK = 64

    def __init__(self, units: Iterable[Unit] = ()) -> None:
        items = tuple(units)
        size = self.CHUNK
        self._chunks: tuple[tuple[Unit, ...], ...] = tuple(
            items[i : i + size] for i in range(0, len(items), size)
        )
        self._length = len(items)

    @property
    def chunks(self) -> tuple[tuple[Unit, ...], ...]:
        return self._chunks

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Unit: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Unit, ...]: ...
    def __getitem__(self, index: int | slice) -> Unit | tuple[Unit, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        return self._chunks[index // self.CHUNK][index % self.CHUNK]

    def __iter__(self) -> Iterator[Unit]:
        for chunk in self._chunks:
            yield from chunk

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Units):
            return self._length == other._length and self._chunks == other._chunks
        if isinstance(other, tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._chunks)

    def __repr__(self) -> str:
        return f"Units({list(self)!r})"

    def replaced(self, index: int, unit: Unit) -> Units:
        """A new list with ``unit`` at ``index``; every other chunk is shared."""
        chunk_no, offset = divmod(index, self.CHUNK)
        chunk = self._chunks[chunk_no]
        new_chunk = (*chunk[:offset], unit, *chunk[offset + 1 :])
        new = object.__new__(Units)
        new._chunks = (*self._chunks[:chunk_no], new_chunk, *self._chunks[chunk_no + 1 :])
        new._length = self._length
        return new


NO_UNITS = Units()


@dataclass(frozen=True, slots=True)
class Execution:
    """One run of one task within a scope (the top level or a parallel execution).

    ``in_flight`` counts units launched and not yet ended, ``done`` units ended; with
    ``next_unit`` they let the core enforce ``concurrency`` without scanning every unit.
    A ``wait_for`` task waits at this level (``inquiry_id`` or ``waits_for``, ``timer``)
    before its units launch; what released it (the answer, or the event) is kept in
    ``released_with``. A compensation execution names the execution it undoes in
    ``compensates``.
    """

    id: int
    task: str
    scope: int
    status: TaskStatus
    started_at: datetime
    finished_at: datetime | None = None
    units: Units = NO_UNITS
    with_items: bool = False
    next_unit: int = 0
    in_flight: int = 0
    done: int = 0
    result: Any = None
    error: Mapping[str, Any] | None = None
    timer: str | None = None
    inquiry_id: str | None = None
    released_with: Any = None
    waits_for: Mapping[str, Any] | None = None
    compensates: int | None = None

    @property
    def is_active(self) -> bool:
        return not self.status.is_terminal


class DeferredKind(StrEnum):
    """Work a paused run holds back until it resumes."""

    START = "start"  # start a new execution of ``task`` in ``scope``
    BEGIN = "begin"  # an execution's delay ended: begin it
    FILL = "fill"  # launch more units of ``execution``
    RELAUNCH = "relaunch"  # the next attempt of unit ``position`` of ``execution``


@dataclass(frozen=True, slots=True)
class Deferred:
    """One piece of held-back work (see :class:`DeferredKind`)."""

    kind: DeferredKind
    task: str = ""
    scope: int = 0
    execution: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class Failure:
    """A task that ended badly with no transition handling it."""

    task: str
    execution: int
    status: TaskStatus
    error: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunContext:
    """Inputs fixed when the run starts: everything templates may read besides results.

    ``secrets`` names what must never be shown: secret parameter names, and
    ``keystore.<key>`` for secret keystore entries. Their values here are references
    (``treadle.common.secret_refs``), never the secrets; ``secret_tag`` is the tag of this
    run's references (shared with its child runs), empty for runs from before encryption.
    """

    parameters: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    keystore: Mapping[str, Any] = field(default_factory=dict)
    identity: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    seed: int = 0
    limits: Limits = field(default_factory=Limits)
    depth: int = 0
    parent_run_id: str | None = None
    parent_attempt_id: str | None = None
    secret_tag: str = ""
    #: ``{name, fire_time}`` of the schedule fire that started the run (``system.schedule``).
    schedule: Mapping[str, Any] | None = None
    #: The priority the run was started with (0-9, 9 first); ``None``: its workflow's, else 5.
    priority: int | None = None
    #: The sandbox policy each attempt's rendered input is checked against before it is
    #: dispatched (docs/governance.md); ``None``: the run is not checked.
    sandbox: SandboxPolicy | None = None
    #: The budget the start gave (each limit it sets wins over the workflow's), and the
    #: ceiling of its workspace's runs from the settings (docs/governance.md).
    budget: Budget | None = None
    budget_ceiling: Budget | None = None


class Storage(StrEnum):
    """Where the store keeps a field of :class:`RunState`, and so how it encodes it.

    Every field of ``RunState`` names its storage in its metadata (:func:`stored`). The
    store derives the ``runs`` row and its JSON ``core`` column from these, and the core's
    :class:`~treadle.scheduler.core.transaction.Tx` derives what a decision may change
    (every field not ``fixed``), so a new field needs only its declaration here (plus a
    migration when it gets a column of its own).
    """

    KEY = "key"  # the ``id`` column of the run's row
    COLUMN = "column"  # a column named after the field, holding the value as it is
    ENUM = "enum"  # a column named after the field, holding the enum member's value
    JSON = "json"  # a JSON column named after the field; null reads as the default
    CONTEXT = "context"  # the ``context`` JSON column; depth and parent ids get columns too
    CORE = "core"  # a key of the JSON ``core`` column, encoded as the field's type says
    ROWS = "rows"  # tables of their own (``task_executions`` and ``task_units``)


#: Keys of a ``RunState`` field's metadata: its :class:`Storage`, and whether it is fixed
#: when the run is created (``decide`` never changes it, so it is not tracked).
STORAGE = "treadle.storage"
FIXED = "treadle.fixed"


def stored(storage: Storage, *, fixed: bool = False) -> dict[str, Any]:
    """The metadata of a ``RunState`` field: ``field(metadata=stored(Storage.CORE))``."""
    return {STORAGE: storage, FIXED: fixed}


@dataclass(frozen=True, slots=True)
class RunState:
    """All a run's state. ``decide`` returns a new one; it never mutates this one.

    ``deferred`` is work held back while the run is paused; ``compensation`` the executions
    still to compensate (next first) while it is compensating; ``paused_children`` the
    child runs that reported themselves paused while this run was pausing (their tasks
    count as finished for the pause, until the run resumes them). Each field's metadata
    says where the store keeps it (see :class:`Storage`).
    """

    run_id: str = field(metadata=stored(Storage.KEY, fixed=True))
    workflow: str = field(metadata=stored(Storage.COLUMN, fixed=True))
    definition_version: int | None = field(
        default=None, metadata=stored(Storage.COLUMN, fixed=True)
    )
    workspace: str = field(default=DEFAULT_WORKSPACE, metadata=stored(Storage.COLUMN, fixed=True))
    status: RunStatus = field(default=RunStatus.PENDING, metadata=stored(Storage.ENUM))
    context: RunContext = field(default_factory=RunContext, metadata=stored(Storage.CONTEXT))
    created_at: datetime | None = field(default=None, metadata=stored(Storage.COLUMN, fixed=True))
    started_at: datetime | None = field(default=None, metadata=stored(Storage.COLUMN))
    finished_at: datetime | None = field(default=None, metadata=stored(Storage.COLUMN))
    vars: Mapping[str, Any] = field(default_factory=dict, metadata=stored(Storage.JSON))
    executions: Mapping[int, Execution] = field(default_factory=dict, metadata=stored(Storage.ROWS))
    latest: Mapping[str, int] = field(default_factory=dict, metadata=stored(Storage.CORE))
    active: Mapping[int, int] = field(default_factory=dict, metadata=stored(Storage.CORE))
    joins: Mapping[str, tuple[int, ...]] = field(
        default_factory=dict, metadata=stored(Storage.CORE)
    )
    failures: Mapping[int, tuple[Failure, ...]] = field(
        default_factory=dict, metadata=stored(Storage.CORE)
    )
    #: While a run retried from one task goes on: the unhandled failures (and cancelled
    #: executions) of the scopes that retry reopened, other than the retried task's. They
    #: do not stop the flow; once their scope has nothing more to do they count again
    #: (``scheduler/core/task_retry.py``). ``None``: nothing held, as in every ended run.
    held_failures: Mapping[int, tuple[Failure, ...]] | None = field(
        default=None, metadata=stored(Storage.CORE)
    )
    timers: Mapping[str, Timer] = field(default_factory=dict, metadata=stored(Storage.CORE))
    next_execution: int = field(default=1, metadata=stored(Storage.CORE))
    uuid_counter: int = field(default=0, metadata=stored(Storage.CORE))
    context_bytes: int = field(default=0, metadata=stored(Storage.CORE))
    output: Any = field(default=None, metadata=stored(Storage.JSON))
    error: Mapping[str, Any] | None = field(default=None, metadata=stored(Storage.JSON))
    deferred: tuple[Deferred, ...] = field(default=(), metadata=stored(Storage.CORE))
    compensation: tuple[int, ...] = field(default=(), metadata=stored(Storage.CORE))
    paused_children: tuple[str, ...] = field(default=(), metadata=stored(Storage.CORE))
    #: The run's budget: limits, what it used, why it stopped (``None``: no budget).
    budget: BudgetState | None = field(default=None, metadata=stored(Storage.CORE))

    def execution(self, execution_id: int) -> Execution:
        return self.executions[execution_id]

    def latest_execution(self, task: str) -> Execution | None:
        execution_id = self.latest.get(task)
        return None if execution_id is None else self.executions[execution_id]


def initial_state(
    run_id: str,
    workflow: str,
    created_at: datetime,
    definition_version: int | None = None,
    workspace: str = DEFAULT_WORKSPACE,
) -> RunState:
    """A run that has been created but not yet requested to start.

    ``definition_version`` pins the run to the definition it started on, in ``workspace``
    (or shared by all); the core never reads either, the service uses them to find the
    run's graph and keystore, and the API to keep the run in its workspace.
    """
    return RunState(
        run_id=run_id,
        workflow=workflow,
        definition_version=definition_version,
        workspace=workspace,
        created_at=created_at,
    )
