"""The embedded runner keeps what actions print, as a distributed worker does: same path.

The ``outtest`` pack's ``say`` action prints its text (which holds a keystore secret and
a secret run parameter) on stdout and a warning on stderr; the task's attempts then show
the input with the secrets as ``***`` and the printed lines with the values blanked out,
and the database file holds neither value. ``TREADLE_CAPTURE_OUTPUT_BYTES=0`` keeps none.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from treadle.common.loader import load_packs
from treadle.scheduler.service.attempt_views import task_attempts
from treadle.scheduler.store.output_tables import attempt_outputs

PASSWORD = "pw-Lm4Rt8Vx2Qz"
TOKEN = "tok-Wn6Jc3Bd9Hs"

PACK = {
    "pack.yaml": "ref: outtest\nversion: '1.0.0'\n",
    "actions/say.yaml": """
        name: say
        runner_type: python
        entry_point: actions.py:say
        parameters:
          text: {type: string, required: true}
          times: {type: integer, default: 1}
    """,
    "actions/actions.py": """
        import sys


        def say(text, times=1):
            for n in range(times):
                print(f"{n}: {text}")
            print("careful", file=sys.stderr)
            return {"said": times}
    """,
}

FLOW = """\
ref: outtest.flow
parameters:
  api_token: {type: string, secret: true, required: true}
tasks:
  - name: speak
    action: outtest.say
    input:
      text: "db {{ kv.get_secret('db.password') }} and token {{ parameters.api_token }}"
      times: 2
"""


@pytest.fixture
def outtest(harness: Any, tmp_path: Path) -> Any:
    root = tmp_path / "packs"
    for name, text in PACK.items():
        path = root / "outtest" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    loaded = load_packs([root])
    assert [str(issue) for issue in loaded.issues] == []
    harness.catalog.actions.update(loaded.actions)
    return harness


def _run(harness: Any, **settings: Any) -> tuple[Any, str]:
    runner = harness.runner(**settings)
    with runner.store.unit_of_work() as uow:
        uow.kv_set("db.password", PASSWORD, secret=True, at=datetime.now(UTC))
    run_id, followed = harness.run(runner, harness.workflow(FLOW), {"api_token": TOKEN})
    assert followed.state.status == "succeeded"
    return runner, run_id


def test_the_embedded_runner_keeps_what_the_action_printed_without_secrets(outtest: Any) -> None:
    runner, run_id = _run(outtest)

    with runner.store.snapshot() as uow:
        [attempt] = task_attempts(uow, run_id, "speak")["attempts"]

    assert attempt["status"] == "succeeded"
    assert attempt["worker"] == "embedded"
    assert attempt["input"] == {"text": "db *** and token ***", "times": 2}
    assert attempt["output"] == {
        "stdout": "0: db *** and token ***\n1: db *** and token ***\n",
        "stderr": "careful\n",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }
    runner.close()
    path = Path(outtest.database_url.removeprefix("sqlite:///"))
    stored = b"".join(
        p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
    )
    assert b"careful" in stored  # the output is in the file...
    for text in (PASSWORD, TOKEN):
        assert text.encode() not in stored  # ...and no secret value is


def test_zero_keeps_no_output(outtest: Any) -> None:
    runner, run_id = _run(outtest, capture_output_bytes=0)

    with runner.store.snapshot() as uow:
        [attempt] = task_attempts(uow, run_id, "speak")["attempts"]
        rows = uow.connection.execute(select(func.count()).select_from(attempt_outputs))
        assert rows.scalar_one() == 0

    assert attempt["output"] is None
    assert attempt["input"] == {"text": "db *** and token ***", "times": 2}
