"""The names templates can read, built lazily over the run's working state.

Building the whole ``task`` namespace for every render would cost time proportional to the
run's size; instead each namespace is a read-only :class:`Mapping` that looks things up when
a template asks. Views read the *working* state of the current decision, so a ``when``
evaluated after a ``publish`` in the same step sees the published value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.ids import derived_uuid
from treadle.scheduler.core.state import Execution

if TYPE_CHECKING:
    from treadle.scheduler.core.transaction import Tx


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z``, the one time format users see."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def execution_result(execution: Execution) -> Any:
    """What ``task.<name>.result`` is: the unit's result, or the item results in order."""
    if execution.with_items:
        return [unit.result for unit in execution.units]
    if execution.units:
        return execution.units[0].result
    return execution.result


def failed_items(execution: Execution) -> list[dict[str, Any]]:
    return [
        {"index": unit.index, "item": unit.item, "error": dict(unit.error or {})}
        for unit in execution.units
        if unit.status.is_unsuccessful
    ]


class _View(Mapping[str, Any]):
    """A read-only mapping computed on access."""

    __slots__ = ()

    def _keys(self) -> tuple[str, ...]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


class TaskView(_View):
    """``task.<name>``: the latest execution of one task.

    ``event`` is there when a ``wait_for: {event}`` released the task: ``{id, type,
    subject, data}``.
    """

    __slots__ = ("_execution",)
    _KEYS: tuple[str, ...] = (
        "status",
        "result",
        "results",
        "error",
        "failed_items",
        "started_at",
        "finished_at",
    )

    def __init__(self, execution: Execution) -> None:
        self._execution = execution

    def _keys(self) -> tuple[str, ...]:
        keys = self._KEYS
        if self._execution.inquiry_id is not None:
            keys = (*keys, "inquiry_id")
        if self._event() is not None:
            keys = (*keys, "event")
        return keys

    def _event(self) -> Any:
        released = self._execution.released_with
        return released.get("event") if isinstance(released, Mapping) else None

    def __getitem__(self, key: str) -> Any:
        execution = self._execution
        if key == "status":
            return execution.status.value
        if key in ("result", "results"):
            return execution.result
        if key == "error":
            return None if execution.error is None else dict(execution.error)
        if key == "failed_items":
            return failed_items(execution)
        if key == "started_at":
            return iso(execution.started_at)
        if key == "finished_at":
            return iso(execution.finished_at)
        if key == "inquiry_id" and execution.inquiry_id is not None:
            return execution.inquiry_id
        if key == "event" and self._event() is not None:
            return self._event()
        raise KeyError(key)


class TaskNamespace(_View):
    """``task``: every task that has run at least once, by name."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def _keys(self) -> tuple[str, ...]:
        return tuple(self._tx.latest)

    def __getitem__(self, key: str) -> Any:
        execution_id = self._tx.latest.get(key)
        if execution_id is None:
            raise KeyError(key)
        return TaskView(self._tx.executions[execution_id])


class InquiryNamespace(_View):
    """``inquiry.<task>.response``: the answer that released or completed a task."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def _keys(self) -> tuple[str, ...]:
        return tuple(name for name in self._tx.latest if self._answer(name) is not None)

    def _answer(self, task: str) -> Mapping[str, Any] | None:
        execution_id = self._tx.latest.get(task)
        if execution_id is None:
            return None
        execution = self._tx.executions[execution_id]
        released = execution.released_with
        if isinstance(released, Mapping) and "response" in released:
            return {"response": released["response"]}
        result = execution.result
        if isinstance(result, Mapping) and "response" in result and not execution.with_items:
            return {"response": result["response"]}
        return None

    def __getitem__(self, key: str) -> Any:
        answer = self._answer(key)
        if answer is None:
            raise KeyError(key)
        return answer


class VarsView(_View):
    """``workflow`` / ``vars`` / ``variables``: the run's published variables, live."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def _keys(self) -> tuple[str, ...]:
        return tuple(self._tx.vars)

    def __getitem__(self, key: str) -> Any:
        return self._tx.vars[key]


class KeystoreView(_View):
    """``keystore`` / ``kv``: the keystore as the run started with it, by key.

    A secret entry reads as its reference, never its value (``kv.get_secret('name')``
    and ``kv.name`` alike); the worker puts the value in place just before the action
    runs, so a condition evaluated here sees the reference. ``get_secret`` is the one
    method templates may call besides the mapping's own.
    """

    __slots__ = ("_entries",)
    TEMPLATE_METHODS: tuple[str, ...] = ("get_secret",)

    def __init__(self, entries: Mapping[str, Any]) -> None:
        self._entries = entries

    def _keys(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __getitem__(self, key: str) -> Any:
        return self._entries[key]

    def get_secret(self, key: str) -> Any:
        """The entry ``key``: a reference for a secret (the value of a plain entry)."""
        if key not in self._entries:
            raise LookupError(
                f"the keystore has no entry {key!r} (a run reads the keystore as it was "
                "when the run started)"
            )
        return self._entries[key]


def build_context(
    tx: Tx,
    *,
    current: Execution | None = None,
    item: Any = None,
    index: int | None = None,
) -> dict[str, Any]:
    """The template context for one evaluation; ``current`` is the task being decided."""
    run = tx.context
    variables = VarsView(tx)
    keystore = KeystoreView(run.keystore)
    config = dict(run.config)
    now = tx.now
    status = current.status if current is not None else None

    def status_is(wanted: TaskStatus) -> Callable[[], bool]:
        return lambda: status is wanted

    def result() -> Any:
        return None if current is None else current.result

    def now_fn() -> str | None:
        return iso(now)

    def uuid_fn() -> str:
        tx.uuid_counter += 1
        return derived_uuid(run.seed, tx.run_id, tx.uuid_counter)

    system = {
        "run_id": tx.run_id,
        "workflow": tx.graph.ref,
        "workflow_start": iso(tx.started_at),
        "timestamp": int(now.timestamp()),
        "identity": dict(run.identity),
        "depth": run.depth,
        "parent_run_id": run.parent_run_id,
        "seed": run.seed,
        "schedule": dict(run.schedule) if run.schedule else None,
    }
    return {
        "parameters": run.parameters,
        "workflow": variables,
        "vars": variables,
        "variables": variables,
        "task": TaskNamespace(tx),
        "inquiry": InquiryNamespace(tx),
        "config": config,
        "pack": {"config": config},
        "keystore": keystore,
        "kv": keystore,
        "system": system,
        "item": item,
        "index": index,
        "succeeded": status_is(TaskStatus.SUCCEEDED),
        "failed": status_is(TaskStatus.FAILED),
        "timed_out": status_is(TaskStatus.TIMED_OUT),
        "result": result,
        "now": now_fn,
        "uuid": uuid_fn,
    }
