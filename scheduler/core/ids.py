"""Deterministic identifiers derived from a run's id: attempts, timers, child runs, inquiries.

The core never invents randomness, so every id it hands out is a function of the run id,
the execution, the unit position and the attempt number (or of the run's seed). Replaying a
run yields the same ids, and a worker's result names its attempt unambiguously.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """The parts of an attempt id: ``<run>/<execution>/<unit position>/<attempt>``."""

    run_id: str
    execution: int
    position: int
    attempt: int


def attempt_id(run_id: str, execution: int, position: int, attempt: int) -> str:
    return f"{run_id}/{execution}/{position}/{attempt}"


def parse_attempt_id(value: str) -> AttemptRef | None:
    """The parts of ``value``, or ``None`` if it is not an attempt id."""
    parts = value.rsplit("/", 3)
    if len(parts) != 4:
        return None
    run_id, execution, position, attempt = parts
    if not (execution.isdigit() and position.isdigit() and attempt.isdigit()):
        return None
    return AttemptRef(run_id, int(execution), int(position), int(attempt))


def unit_timer_id(kind: str, run_id: str, execution: int, position: int, attempt: int) -> str:
    return f"{attempt_id(run_id, execution, position, attempt)}/{kind}"


def execution_timer_id(kind: str, run_id: str, execution: int) -> str:
    return f"{run_id}/{execution}/{kind}"


def run_timer_id(kind: str, run_id: str) -> str:
    return f"{run_id}/run/{kind}"


def child_run_id(run_id: str, execution: int, position: int, attempt: int) -> str:
    return f"{run_id}.{execution}.{position}.{attempt}"


def inquiry_id(run_id: str, execution: int, position: int, attempt: int) -> str:
    digest = hashlib.sha256(attempt_id(run_id, execution, position, attempt).encode()).hexdigest()
    return f"iq_{digest[:16]}"


def derived_uuid(seed: int, run_id: str, counter: int) -> str:
    """A version-4-shaped UUID that is a pure function of the run's seed and a counter."""
    digest = hashlib.sha256(f"{seed}:{run_id}:{counter}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def idempotency_key(run_id: str, task: str, execution: int, position: int) -> str:
    """The key every attempt of one unit of one task execution carries (an action with
    side effects makes its effect once per key): a retry, a redelivery or a manual retry
    of the run keeps it; a new pass of a loop (a new execution) or another item gets
    another. UUID-shaped, as most services expect an ``Idempotency-Key`` to be."""
    digest = hashlib.sha256(f"idempotency:{run_id}/{task}/{execution}/{position}".encode())
    return str(uuid.UUID(bytes=digest.digest()[:16], version=4))
