"""A task's attempts as people read them: what each was given and what its action printed.

Served by ``GET /api/v1/runs/{id}/tasks/{task}/attempts``, ``treadle runs show --attempts``
and the task's details in the web UI. Shape (docs/api.md)::

    {run, task, attempts: [attempt], next_cursor}

    attempt: {attempt_id, execution, item, attempt, action, status, queue, worker,
              dispatched_at, started_at, finished_at, error, reason,
              input,    the rendered input the attempt was dispatched with (null when
                        no dispatch row is found)
              output}   {stdout, stderr, stdout_truncated, stderr_truncated}, or null
                        when the action printed nothing (or capture was off)

Attempts come in the order of their execution, unit (item) and attempt number, a page at
a time (``next_cursor``). Nothing secret is shown: in the input, secret references (a
keystore secret, a secret run parameter) and the values of the action's ``secret``
parameters are ``***``, and the run's secret values are masked everywhere, as in the run
document; the output was redacted by the worker before it left.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from treadle.common.errors import NotFound, ParameterError
from treadle.common.messages import ActionOutput, TaskDispatch
from treadle.common.redaction import REDACTED, redact, secret_values_of
from treadle.common.secret_refs import mask_references
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.service.run_document import run_secrets
from treadle.scheduler.store import AttemptEntry, UnitOfWork
from treadle.scheduler.store.attempt_details_repo import AttemptKey

__all__ = ["MAX_ATTEMPT_PAGE", "task_attempts"]

#: The most attempts one page holds (each may carry two streams of captured output).
MAX_ATTEMPT_PAGE = 100


def task_attempts(
    uow: UnitOfWork,
    run_id: str,
    task: str,
    *,
    workspace: str | None = None,
    execution: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """A page of the attempts of task ``task`` (every execution, or ``execution`` only).

    NotFound for an unknown run (or one of another ``workspace``), a task that has not
    started or an execution it does not have; ParameterError for a cursor no page gave.
    Read it in ``Store.snapshot()``.
    """
    state = uow.load_run_overview(run_id, failures=0).state
    if workspace is not None and state.workspace != workspace:
        raise NotFound(f"run {run_id} not found")
    ran = sorted(e.id for e in state.executions.values() if e.task == task)
    if not ran:
        raise NotFound(f"run {run_id} has no execution of task '{task}'")
    if execution is not None:
        if execution not in ran:
            raise NotFound(f"task '{task}' of run {run_id} has no execution {execution}")
        ran = [execution]
    after = None if cursor is None else decode_attempt_cursor(cursor)
    entries = uow.attempts_page(run_id, ran, after=after, limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    dispatches = uow.dispatches_of(run_id, entries)
    outputs = uow.attempt_outputs([entry.attempt_id for entry in entries])
    secret_names = _SecretParameters(uow)
    last = entries[-1] if entries else None
    shown = {
        "run": run_id,
        "task": task,
        "attempts": [
            _attempt(
                entry,
                dispatches.get(entry.attempt_id),
                outputs.get(entry.attempt_id),
                secret_names.of(entry.action_ref),
            )
            for entry in entries
        ],
        "next_cursor": (
            encode_attempt_cursor((last.execution_id, last.position, last.attempt))
            if more and last is not None
            else None
        ),
    }
    masked: dict[str, Any] = redact(shown, run_secrets(state))
    return masked


def encode_attempt_cursor(key: AttemptKey) -> str:
    """The opaque cursor of a page ending at the attempt ``key`` (execution, unit, number)."""
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_attempt_cursor(cursor: str) -> AttemptKey:
    """The key of a cursor from :func:`encode_attempt_cursor` (ParameterError otherwise)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        key = None
    if not (
        isinstance(key, list)
        and len(key) == 3
        and all(isinstance(part, int) and not isinstance(part, bool) for part in key)
    ):
        raise ParameterError([f"{cursor!r} is not a next cursor a page returned"], subject="cursor")
    return (key[0], key[1], key[2])


class _SecretParameters:
    """The names of each action's ``secret`` parameters, from the registry (read once)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._known: dict[str, frozenset[str]] = {}

    def of(self, action_ref: str) -> frozenset[str]:
        names = self._known.get(action_ref)
        if names is None:
            row = self._uow.registered_action(action_ref)
            params = (row or {}).get("parameters") or []
            names = frozenset(
                str(p["name"]) for p in params if isinstance(p, Mapping) and p.get("secret")
            )
            self._known[action_ref] = names
        return names


def _attempt(
    entry: AttemptEntry,
    dispatch: TaskDispatch | None,
    output: ActionOutput | None,
    secret_names: frozenset[str],
) -> dict[str, Any]:
    return {
        "attempt_id": entry.attempt_id,
        "execution": entry.execution_id,
        "item": None if dispatch is None else dispatch.item_index,
        "attempt": entry.attempt,
        "action": entry.action_ref,
        "status": entry.status.value,
        "queue": entry.queue,
        "worker": entry.worker,
        "dispatched_at": iso(entry.dispatched_at),
        "started_at": iso(entry.started_at),
        "finished_at": iso(entry.finished_at),
        "error": None if entry.error is None else dict(entry.error),
        "reason": entry.reason,
        "input": None if dispatch is None else _shown_input(dispatch.input, secret_names),
        "output": None if output is None else output.model_dump(mode="json"),
    }


def _shown_input(given: Mapping[str, Any], secret_names: frozenset[str]) -> dict[str, Any]:
    """The input with secret references and the action's secret parameters as ``***``
    (and their values masked wherever else they were copied)."""
    shown: dict[str, Any] = mask_references(dict(given), REDACTED)
    secrets = secret_values_of([shown[name] for name in secret_names if name in shown])
    for name in secret_names:
        if name in shown:
            shown[name] = REDACTED
    masked: dict[str, Any] = redact(shown, secrets)
    return masked
