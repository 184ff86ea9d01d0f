"""``treadle worker`` refuses bad options before connecting anywhere (exit 2, a clear message),
and ``treadle.worker.celery_app`` is a real app for Celery's own command line and Flower."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

TREADLE = Path(sys.executable).parent / "treadle"


def run_worker(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    env["TREADLE_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1//"  # never reached
    return subprocess.run(
        [str(TREADLE), "worker", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_pack_path_that_is_not_a_folder_is_refused(tmp_path: Path):
    done = run_worker("--pack-path", str(tmp_path / "nowhere"))

    assert done.returncode == 2
    assert f"pack path {tmp_path / 'nowhere'} is not a folder" in done.stderr


@pytest.mark.parametrize("queues", ["a,,b", ",", " "])
def test_empty_queue_names_are_refused(queues: str):
    done = run_worker("--queues", queues)

    assert done.returncode == 2
    assert "--queues expects queue names separated by commas" in done.stderr


def test_the_celery_app_module_holds_the_real_tasks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TREADLE_DEFAULT_QUEUE", "flower.tasks")
    monkeypatch.delitem(sys.modules, "treadle.worker.celery_app", raising=False)
    module = importlib.import_module("treadle.worker.celery_app")
    monkeypatch.delitem(sys.modules, "treadle.worker.celery_app")

    app = module.app
    assert {"treadle.run.python", "treadle.run.shell", "treadle.run.http"} <= set(app.tasks)
    assert app.conf.task_default_queue == "flower.tasks"  # built from the environment
    assert app.tasks["treadle.run.python"].acks_late is True
    assert app.tasks["treadle.run.python"].reject_on_worker_lost is True
