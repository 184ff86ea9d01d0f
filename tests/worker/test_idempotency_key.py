"""What an action sees of its attempt's idempotency key, on a worker.

The key travels in the dispatch (the core sets it for actions with ``side_effects: true``);
a redelivered message is the same dispatch, so the action sees the same key. The http
runner sends it as ``Idempotency-Key`` to a real server started here; a Python action reads
it from ``current_attempt()``; a shell action from ``TREADLE_IDEMPOTENCY_KEY``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus
from treadle.worker.attempt_context import current_attempt
from treadle.worker.execute import execute

KEY = "7a0e8f0c-3a8d-4b8e-9d35-6f1c2b9e0a11"


class _Headers(BaseHTTPRequestHandler):
    """Answers every request with the headers it came with, as JSON."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({name.lower(): value for name, value in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Headers)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http(worker, flat_params):
    worker.add(
        ActionSpec(
            ref="core.http",
            runner_type=RunnerType.HTTP,
            side_effects=True,
            parameters=flat_params(
                {"url": {"type": "string"}, "method": {"type": "string"}, "headers": {}}
            ),
        )
    )
    return worker


def _sent_headers(worker, dispatch) -> dict[str, str]:
    result = execute(dispatch, worker.catalog, worker.settings, runners=worker.runners)
    assert result.outcome is AttemptStatus.SUCCEEDED, result.error
    headers: dict[str, str] = result.result["body"]
    return headers


def test_the_http_runner_sends_the_key_and_the_same_on_a_redelivery(http, server):
    dispatch = http.dispatch("core.http", {"url": server, "method": "POST"}, idempotency_key=KEY)
    first = _sent_headers(http, dispatch)
    redelivered = _sent_headers(http, dispatch)  # the broker delivers the message again
    assert first["idempotency-key"] == KEY
    assert redelivered["idempotency-key"] == KEY


def test_no_key_no_header_and_the_inputs_own_header_wins(http, server):
    plain = _sent_headers(http, http.dispatch("core.http", {"url": server}))
    own = _sent_headers(
        http,
        http.dispatch(
            "core.http",
            {"url": server, "headers": {"idempotency-key": "mine"}},
            idempotency_key=KEY,
        ),
    )
    assert "idempotency-key" not in plain
    assert own["idempotency-key"] == "mine"


def test_a_python_action_reads_its_attempt(worker, python_action):
    python_action(
        """\
        from treadle.worker.attempt_context import current_attempt

        def main():
            attempt = current_attempt()
            return {"key": attempt.idempotency_key, "task": attempt.task, "n": attempt.attempt}
        """
    )
    dispatch = worker.dispatch("tests.action", idempotency_key=KEY)
    runs = [execute(dispatch, worker.catalog, worker.settings, runners=worker.runners)]
    runs.append(execute(dispatch, worker.catalog, worker.settings, runners=worker.runners))
    assert [r.result for r in runs] == [{"key": KEY, "task": "task", "n": 1}] * 2
    assert current_attempt() is None  # only while the action runs


def test_an_async_python_action_reads_it_too(worker, python_action):
    python_action(
        """\
        from treadle.worker.attempt_context import current_attempt

        async def main():
            return current_attempt().idempotency_key
        """
    )
    result = worker.run("tests.action", idempotency_key=KEY)
    assert result.result == KEY


def test_a_shell_action_gets_it_in_its_environment(make_worker, flat_params):
    shell = make_worker(shell_enabled=True)
    shell.add(
        ActionSpec(
            ref="core.shell",
            runner_type=RunnerType.SHELL,
            parameters=flat_params({"cmd": {"type": "string"}}),
        )
    )
    cmd = 'echo "${TREADLE_IDEMPOTENCY_KEY:-none}"'
    keyed = shell.run("core.shell", {"cmd": cmd}, idempotency_key=KEY)
    plain = shell.run("core.shell", {"cmd": cmd})
    assert keyed.result["stdout"] == KEY
    assert plain.result["stdout"] == "none"
