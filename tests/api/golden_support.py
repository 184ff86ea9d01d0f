"""What the golden and replay API tests share: the key, the workflows, signing and
uploading a record, and reading the two counters off ``/metrics`` (the fixtures built on
them, ``golden_api``, ``record`` and ``dice_run``, are in ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from treadle.common.access import Role
from treadle.scheduler.service.golden import (
    GoldenKeys,
    VerificationResult,
)
from treadle.scheduler.version_replay import Cause

from .test_metrics_route import Samples, value

ROOT = Path(__file__).resolve().parents[2]
KEY = "api-golden-key-0123456789"
Bearer = Callable[[Role], dict[str, str]]
ErrorShape = Callable[..., dict[str, object]]

#: Run to its end by the embedded runner: the record verified.
FLOW = """\
ref: gold.flow
parameters:
  a: {type: number, default: 2}
tasks:
  - name: add
    action: examples.add
    input: {a: "{{ parameters.a }}", b: 3}
    next:
      - when: "{{ succeeded() }}"
        do: [say]
  - name: say
    action: core.echo
    input: {message: "total {{ task.add.result.sum }}"}
output_map:
  total: "{{ task.add.result.sum }}"
"""

#: Started and left running (its first task dispatched): the run replayed. ``roll`` has a
#: step seed, as the tasks of an imported AOS plan do.
DICE = """\
ref: gold.dice
tasks:
  - name: roll
    action: core.noop
    input: {message: "roll", seed: "{{ (system.seed * 7) % 1000 }}"}
    next: [{do: [done]}]
  - name: done
    action: core.noop
"""


def _jsonl(role: Role, bearer: Bearer, **extra: str) -> dict[str, str]:
    return {**bearer(role), "Content-Type": "application/jsonl", **extra}


def _sign(data: bytes, key: str = KEY) -> str:
    return GoldenKeys.parse(key).sign(data)


def _verify(api: TestClient, bearer: Bearer, data: bytes, signature: str, **params: str) -> Any:
    headers = _jsonl(Role.OPERATOR, bearer, **{"Golden-Signature": signature.strip()})
    return api.post("/api/v1/golden/verify", content=data, headers=headers, params=params)


def _verdicts(samples: Samples) -> dict[str, float]:
    metric = "treadle_golden_verifications_total"
    return {
        result.value: value(samples, metric, result=result.value) for result in VerificationResult
    }


def _causes(samples: Samples) -> dict[str, float]:
    metric = "treadle_replay_divergences_total"
    return {cause.value: value(samples, metric, cause=cause.value) for cause in Cause}


def _present(samples: Samples) -> set[tuple[str, str]]:
    """The labelled series of the two counters the registry exports, at any value."""
    found = set()
    for name, labels in samples:
        for label, metric in (
            ("result", "treadle_golden_verifications_total"),
            ("cause", "treadle_replay_divergences_total"),
        ):
            if name == metric:
                found.add((metric, dict(labels)[label]))
    return found


# -- verifying -------------------------------------------------------------------------------
