"""Celery's ``threads`` pool runs several attempts in one process at once: each result still
carries only what its own action printed. A worker in a test thread (its pool's threads
run the actions) on a real RabbitMQ vhost; the reports are read off the results queue.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.worker.app import create_worker_app

pytestmark = pytest.mark.services

PACK = {
    "pack.yaml": "ref: ptest\nversion: '1.0.0'\n",
    "actions/chatter.yaml": """
        name: chatter
        runner_type: python
        entry_point: actions.py:chatter
        parameters:
          name: {type: string, required: true}
    """,
    "actions/actions.py": """
        import sys
        import time


        def chatter(name):
            for n in range(40):
                print(f"{name} {n}")
                time.sleep(0.01)  # the others print meanwhile
            print(f"{name} done", file=sys.stderr)
            return {"name": name}
    """,
}


@pytest.fixture
def settings(rabbitmq_url: str, test_packs: Path, tmp_path: Path) -> Settings:
    for name, text in PACK.items():
        path = tmp_path / "packs" / "ptest" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return Settings(broker_url=rabbitmq_url, pack_paths=[str(test_packs), str(tmp_path / "packs")])


@pytest.fixture
def worker(settings: Settings, worker_thread: Any) -> Iterator[Any]:
    app = create_worker_app(settings)
    with worker_thread(app, pool="threads", concurrency=4) as running:
        yield app, running


def test_attempts_running_at_once_in_the_threads_pool_each_report_their_own_lines(
    settings: Settings, worker: Any, open_reports: Any, make_dispatch: Any, send_dispatch: Any
) -> None:
    app, _running = worker
    dispatches = [make_dispatch("ptest.chatter", {"name": f"a{i}"}) for i in range(4)]
    with open_reports(settings) as reports:
        for dispatch in dispatches:
            send_dispatch(app, dispatch, settings.default_queue)
        results = [reports.wait_for_result(d.attempt_id, timeout=30) for d in dispatches]

    for i, result in enumerate(results):
        assert result.outcome is AttemptStatus.SUCCEEDED, result
        assert result.output is not None
        assert result.output.stdout == "".join(f"a{i} {n}\n" for n in range(40))
        assert result.output.stderr == f"a{i} done\n"
    starts = sorted(r.started_at for r in results if r.started_at is not None)
    ends = sorted(r.finished_at for r in results if r.finished_at is not None)
    assert starts[-1] < ends[0], "the four attempts did not overlap"
