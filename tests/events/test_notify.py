"""core.notify in embedded mode: the log channel, a signed webhook checked by a real HTTP
server, and failures recorded in the result while the run goes on."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

Embedded = Any  # the ``embedded`` fixture (tests/events/conftest.py)
SECRET = "s3cr3t-hook-key"


def _signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_log_and_signed_webhook_and_an_unreachable_hook_in_one_run(
    embedded: Embedded, webhook: Any, unreachable_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="treadle.notify")

    followed = embedded.start(
        "eventtest.notify_all",
        {"url": webhook.url, "unreachable": unreachable_url, "secret": SECRET},
    )

    run_id = followed.state.run_id
    document = embedded.document(run_id)
    assert document["status"] == "succeeded"
    output = document["output"]
    assert output["log"] == {"delivered": True, "channel": "log"}
    assert output["hook"] == {"delivered": True, "channel": "webhook", "status_code": 200}
    nowhere = output["nowhere"]
    assert (nowhere["delivered"], nowhere["channel"]) == (False, "webhook")
    assert "ConnectError" in nowhere["error"]

    [record] = [r for r in caplog.records if r.name == "treadle.notify"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"notification (run {run_id} task to_log): run {run_id} says hello"
    )
    assert SECRET not in caplog.text

    [request] = webhook.received
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-team"] == "platform"
    assert request.headers["x-treadle-signature"] == _signature(request.body)
    assert request.json() == {
        "message": "deployed",
        "payload": {"version": 3, "tags": ["a", "b"]},
        "run_id": run_id,
        "task": "to_hook",
    }
    assert SECRET not in str(document)


def test_a_webhook_that_answers_an_error_status_is_not_delivered(
    embedded: Embedded, webhook: Any, unreachable_url: str
) -> None:
    webhook.status = 503

    followed = embedded.start(
        "eventtest.notify_all",
        {"url": webhook.url, "unreachable": unreachable_url, "secret": SECRET},
    )

    output = embedded.document(followed.state.run_id)["output"]
    assert output["hook"] == {
        "delivered": False,
        "channel": "webhook",
        "status_code": 503,
        "error": "the webhook answered HTTP 503",
    }


class _SilentServer:
    """Accepts a POST and answers only when released (or never, within the test)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        release = self.release

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                release.wait(30)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/slow"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def silent() -> Iterator[_SilentServer]:
    server = _SilentServer()
    try:
        yield server
    finally:
        server.close()


def test_a_webhook_that_does_not_answer_stops_being_waited_for_at_the_timeout(
    silent: _SilentServer,
) -> None:
    from treadle.common.loader import load_packs
    from treadle.common.messages import TaskDispatch
    from treadle.worker.execute import RunnerSettings, execute

    catalog = load_packs([Path(__file__).resolve().parents[2] / "packs"])
    dispatch = TaskDispatch(
        attempt_id="r/1/0/1",
        run_id="r",
        task="hook",
        execution=1,
        attempt=1,
        action_ref="core.notify",
        input={"channel": "webhook", "url": silent.url, "message": "hi", "timeout": 0.5},
    )

    began = time.monotonic()
    result = execute(dispatch, catalog, RunnerSettings())
    took = time.monotonic() - began

    assert result.outcome.value == "succeeded"
    assert result.result["delivered"] is False
    assert took < 3
