"""Replays over HTTP against published versions, each cause of a divergence counted.

Runs started with :class:`treadle.Client` (and a golden record) are replayed against
versions published after them; each cause is visible at ``GET /metrics`` with the label
values the alert rules use, and unknown runs, workflows and versions are 404s counted
nowhere (``golden_support.py`` has what this shares with ``test_golden_api.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from treadle.client import Client
from treadle.common.access import Principal, Role
from treadle.common.loader import load_workflow_text
from treadle.scheduler.service.access import issue
from treadle.scheduler.service.golden import (
    golden_bytes,
    golden_lines,
)
from treadle.scheduler.service.renderings import load_stored_run
from treadle.scheduler.store import Store
from treadle.scheduler.version_replay import Cause, Change, Divergence, ReplayReport

from .conftest import FakeClock
from .golden_support import DICE, Bearer, ErrorShape, _causes, _jsonl
from .test_metrics_route import scrape


def _publish(client: Client, text: str) -> None:
    client.register(load_workflow_text(text, "<dice>"))


def _replay(
    api: TestClient, bearer: Bearer, run_id: str, role: Role = Role.OPERATOR, **params: Any
) -> Any:
    return api.post(f"/api/v1/runs/{run_id}/replay", params=params, headers=bearer(role))


def test_a_run_replays_against_versions_and_each_cause_is_counted(
    golden_api: TestClient, bearer: Bearer, client: Client, dice_run: str
) -> None:
    same = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=1)
    assert same.status_code == 200, same.json()
    assert same.json() == {
        "run": dice_run,
        "recorded": "gold.dice v1",
        "against": "gold.dice v1",
        "identical": True,
        "divergences": [],
        "causes": [],
        "steps": {"recorded": 1, "new": 1},
    }
    # v2: another message and another step seed for roll
    _publish(
        client,
        DICE.replace('"roll", seed: "{{ (system.seed * 7)', '"dice", seed: "{{ (system.seed * 11)'),
    )
    changed = _replay(golden_api, bearer, dice_run, workflow="gold.dice")
    assert changed.status_code == 200
    answer = changed.json()
    assert (answer["against"], answer["identical"], answer["causes"]) == (
        "gold.dice v2",
        False,
        ["input", "seed"],
    )
    assert [(d["step"], d["change"], d["what"], d["cause"]) for d in answer["divergences"]] == [
        ("roll", "input", "message (attempt 1)", "input"),
        ("roll", "input", "seed (attempt 1)", "seed"),
    ]
    assert answer["divergences"][1]["recorded"] == (42 * 7) % 1000
    assert answer["divergences"][1]["message"] == (
        f"roll: input seed (attempt 1): recorded {(42 * 7) % 1000}, new {(42 * 11) % 1000}"
    )
    # v3: roll renamed: the recorded step is removed, the new one added
    _publish(client, DICE.replace("name: roll", "name: throw"))
    renamed = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=3).json()
    assert renamed["causes"] == ["added", "removed"]
    # v4: roll calls another action
    _publish(client, DICE.replace("action: core.noop\n    input", "action: core.echo\n    input"))
    other = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=4).json()
    assert other["causes"] == ["action"]

    causes = _causes(scrape(golden_api, bearer(Role.VIEWER)))
    counted = {"input": 1, "seed": 1, "added": 1, "removed": 1, "action": 1}
    assert causes == {**dict.fromkeys(causes, 0), **counted}


def test_each_change_has_its_cause_and_a_replay_counts_each_cause_once() -> None:
    """The metric's ``cause`` is the change (``new call`` as ``new_call``), with an input
    divergence in a ``seed`` field apart; a replay's causes are distinct, in order."""
    causes = {Divergence("s", change, "x", 1, 2).cause.value for change in Change}
    assert causes == {cause.value for cause in Cause} - {"seed"}
    seed = Divergence("s", Change.INPUT, "seed (attempt 1)", 1, 2, "seed")
    nested = Divergence("s", Change.INPUT, "seed.n (attempt 1)", 1, 2, "seed.n")
    other = Divergence("s", Change.INPUT, "seeds (attempt 1)", 1, 2, "seeds")
    assert (seed.cause, nested.cause, other.cause) == (Cause.SEED, Cause.SEED, Cause.INPUT)
    ended = Divergence("run", Change.RUN, "status", 1, 2)
    report = ReplayReport(2, 2, (other, seed, other, ended))
    assert report.causes == (Cause.INPUT, Cause.SEED, Cause.RUN)


def test_a_golden_record_replays_against_a_version(
    golden_api: TestClient, bearer: Bearer, client: Client, store: Store, dice_run: str
) -> None:
    data = golden_bytes(golden_lines(load_stored_run(store, dice_run)))
    _publish(client, DICE.replace("(system.seed * 7)", "(system.seed * 9)"))
    replayed = golden_api.post(
        "/api/v1/golden/replay",
        content=data,
        params={"workflow": "gold.dice", "name": "dice.jsonl"},
        headers=_jsonl(Role.OPERATOR, bearer),
    )
    assert replayed.status_code == 200, replayed.json()
    assert replayed.json()["causes"] == ["seed"]
    assert replayed.json()["recorded"] == "gold.dice v1"
    assert _causes(scrape(golden_api, bearer(Role.VIEWER)))["seed"] == 1

    cut = b"\n".join(data.splitlines()[:-1])  # no run_end: the record is cut short
    refused = golden_api.post(
        "/api/v1/golden/replay",
        content=cut,
        params={"workflow": "gold.dice", "name": "dice.jsonl"},
        headers=_jsonl(Role.OPERATOR, bearer),
    )
    assert refused.status_code == 422
    assert "dice.jsonl:" in refused.json()["error"]["message"]
    assert "the record is cut short" in refused.json()["error"]["message"]


def test_unknown_runs_workflows_and_versions_are_404_and_counted_nowhere(
    golden_api: TestClient,
    bearer: Bearer,
    store: Store,
    clock: FakeClock,
    dice_run: str,
    error_shape: ErrorShape,
) -> None:
    before = _causes(scrape(golden_api, bearer(Role.VIEWER)))
    unknown_run = _replay(golden_api, bearer, "r-nope", workflow="gold.dice")
    assert unknown_run.status_code == 404
    error_shape(unknown_run.json(), "not_found", "r-nope")
    unknown_flow = _replay(golden_api, bearer, dice_run, workflow="gold.nope")
    assert unknown_flow.status_code == 404
    error_shape(unknown_flow.json(), "not_found", "gold.nope")
    unknown_version = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=9)
    assert unknown_version.status_code == 404
    error_shape(unknown_version.json(), "not_found", "no version 9")
    no_version = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=0)
    assert no_version.status_code == 422
    error_shape(no_version.json(), "validation_error", "query parameter 'version'")
    no_workflow = _replay(golden_api, bearer, dice_run)
    assert no_workflow.status_code == 422
    error_shape(no_workflow.json(), "validation_error", "query parameter 'workflow'")

    # another workspace's token sees no such run
    with store.unit_of_work() as uow:
        elsewhere = issue(
            uow,
            name="team-b-ops",
            role=Role.OPERATOR,
            workspace="team-b",
            expires_at=None,
            created_by=Principal("test-setup", Role.ADMIN, "team-b"),
            now=clock(),
        ).plaintext
    hidden = golden_api.post(
        f"/api/v1/runs/{dice_run}/replay",
        params={"workflow": "gold.dice"},
        headers={"Authorization": f"Bearer {elsewhere}"},
    )
    assert hidden.status_code == 404
    error_shape(hidden.json(), "not_found", f"run {dice_run} not found")
    assert _causes(scrape(golden_api, bearer(Role.VIEWER))) == before
