"""Distributed secrets: the message on the broker carries ciphertext, the worker the value.

The scheduler's own pieces (a store with a key, the run starter, the relay and the Celery
publisher) start a run whose task reads a keystore secret and a secret parameter; the
test takes the published message off the work queue to read its body as the broker holds
it (references and ciphertexts, no plaintext), puts it back, and a real ``treadle worker``
process given ``TREADLE_SECRET_KEY`` runs the action with the values.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange

import treadle
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.secret_box import Keyring, generate_key
from treadle.common.secret_refs import MARKER
from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import task_queue
from treadle.scheduler.service.celery_publisher import CeleryPublisher, kombu_queue
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store import Store

pytestmark = [pytest.mark.services, pytest.mark.slow]

QUEUE = "secrets.tasks"
KEY = generate_key()
PASSWORD = "pw-distributed-Rk7Qm2"
TOKEN = "tok-distributed-Ls5Vx9"

PACK = {
    "pack.yaml": "ref: dsec\nversion: '1.0.0'\n",
    "actions/check.yaml": """
        name: check
        runner_type: python
        entry_point: actions.py:check
        parameters:
          password: {type: string, required: true}
          dsn: {type: string, required: true}
          token: {type: string, required: true}
          expected: {type: object, required: true}
    """,
    "actions/actions.py": """
        import hashlib


        def check(password, dsn, token, expected):
            got = {"password": password, "dsn": dsn, "token": token}
            return {
                name: hashlib.sha256(value.encode()).hexdigest() == expected[name]
                for name, value in got.items()
            }
    """,
}

FLOW = """\
ref: dsec.flow
parameters:
  token: {type: string, secret: true, required: true}
  expected: {type: object, required: true}
tasks:
  - name: check
    action: dsec.check
    input:
      password: "{{ kv.get_secret('db.password') }}"
      dsn: "postgresql://app:{{ kv.get_secret('db.password') }}@db/app"
      token: "{{ parameters.token }}"
      expected: "{{ parameters.expected }}"
"""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def pack_folder(tmp_path: Path) -> Path:
    root = tmp_path / "packs"
    for name, text in PACK.items():
        path = root / "dsec" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def _take_message(settings: Settings, timeout: float = 15) -> Any:
    """The first message on the work queue, unacknowledged (requeue it when done)."""
    connection = Connection(settings.broker_url)
    queue = kombu_queue(
        task_queue(QUEUE, settings.broker_url, settings.delivery_limit),
        Exchange(QUEUE, type="direct", durable=True),
    )(connection.default_channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = queue.get(no_ack=False)
        if message is not None:
            return connection, message
        time.sleep(0.1)
    connection.release()
    pytest.fail("the dispatch never reached the work queue")


def test_a_worker_process_decrypts_what_the_message_carries_encrypted(
    rabbitmq_url: str, pack_folder: Path, tmp_path: Path, worker_processes: Any, open_reports: Any
) -> None:
    settings = Settings(broker_url=rabbitmq_url, default_queue=QUEUE)
    catalog = load_packs([Path(treadle.__file__).parent / "packs", pack_folder])
    spec = load_workflow_text(FLOW, "<test>")
    catalog.workflows[spec.ref] = spec
    handlers = CommandHandlers(QUEUE)
    publisher = CeleryPublisher.from_settings(settings)
    with Store.open(f"sqlite:///{tmp_path / 'scheduler.db'}", secret_key=KEY) as store:
        runs = RunService(
            store, Definitions(store, catalog), clock=lambda: datetime.now(UTC),
            write_commands=handlers.write,
        )  # fmt: skip
        starter = RunStarter(runs)
        with store.unit_of_work() as uow:
            uow.kv_set("db.password", PASSWORD, secret=True, at=datetime.now(UTC))
        expected = {
            "password": _sha(PASSWORD),
            "dsn": _sha(f"postgresql://app:{PASSWORD}@db/app"),
            "token": _sha(TOKEN),
        }
        run_id = starter.start(spec, {"token": TOKEN, "expected": expected})
        try:
            Relay(starter, publisher, handlers, clock=lambda: datetime.now(UTC)).drain()
        finally:
            publisher.close()
        with store.unit_of_work() as uow:
            [attempt] = uow.list_attempts(run_id)

    # the message as the broker holds it: references and ciphertexts only
    connection, message = _take_message(settings)
    try:
        body = message.body if isinstance(message.body, str) else message.body.decode()
        for text in (PASSWORD, TOKEN):
            assert text not in body
        [dispatch] = json.loads(body)[0]
        assert MARKER in dispatch["input"]["dsn"]
        assert MARKER in dispatch["input"]["token"]
        assert sorted(dispatch["secrets"]) == sorted(
            {dispatch["input"]["password"], dispatch["input"]["token"]}
        )
        keyring = Keyring.parse(KEY)
        assert sorted(keyring.decrypt(c) for c in dispatch["secrets"].values()) == sorted(
            [PASSWORD, TOKEN]
        )
        message.requeue()
    finally:
        connection.release()

    with open_reports(settings) as reports:
        worker = worker_processes(
            rabbitmq_url,
            "--concurrency", "1", "--pool", "solo", "--pack-path", str(pack_folder),
            default_queue=QUEUE, secret_key=KEY,
        )  # fmt: skip
        worker.wait_ready()
        result = reports.wait_for_result(attempt.attempt_id, timeout=30)
    assert result.outcome is AttemptStatus.SUCCEEDED, result.error
    assert result.result == {"password": True, "dsn": True, "token": True}
    for text in (PASSWORD, TOKEN):
        assert text not in worker.output()
