"""The http runner against a real HTTP server started in this process."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from treadle.common.messages import TaskResult
from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus

HTTP_PARAMS = {
    "url": {"type": "string", "required": True},
    "method": {"type": "string", "default": "GET"},
    "headers": {"type": "object"},
    "params": {"type": "object"},
    "json": {},
    "body": {"type": "string"},
    "timeout": {"type": "number", "default": 30},
    "expected_status": {"type": ["integer", "array"], "items": {"type": "integer"}},
}


class _Handler(BaseHTTPRequestHandler):
    release: threading.Event

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Server", "test")
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if url.path == "/echo":
            seen = {
                "method": self.command,
                "query": parse_qs(url.query),
                "content_type": self.headers.get("Content-Type"),
                "x_token": self.headers.get("X-Token"),
                "body": body,
            }
            self._send(200, json.dumps(seen).encode(), "application/json; charset=utf-8")
        elif url.path == "/text":
            self._send(200, "plain text, é".encode(), "text/plain; charset=utf-8")
        elif url.path == "/missing":
            self._send(404, b'{"error": "no such thing"}', "application/json")
        elif url.path == "/big":
            self._send(200, b"x" * 10_000, "text/plain")
        elif url.path == "/hang":
            self.release.wait(10)
            self._send(200, b"late", "text/plain")
        else:
            self._send(500, b"unexpected path", "text/plain")

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()


@pytest.fixture
def server() -> Iterator[str]:
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"release": release})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http(make_worker, flat_params):
    worker = make_worker(max_payload_bytes=5000)
    worker.add(
        ActionSpec(
            ref="core.http", runner_type=RunnerType.HTTP, parameters=flat_params(HTTP_PARAMS)
        )
    )
    return worker


def _error(result: TaskResult) -> tuple[str, str]:
    assert result.outcome is AttemptStatus.FAILED, result
    assert result.error is not None
    return result.error.type, result.error.message


def test_a_json_response_is_parsed(http, server):
    result = http.run("core.http", {"url": f"{server}/echo", "params": {"page": 2}})

    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result["status_code"] == 200
    assert result.result["headers"]["x-server"] == "test"
    assert result.result["body"]["method"] == "GET"
    assert result.result["body"]["query"] == {"page": ["2"]}


def test_a_json_request_with_headers(http, server):
    result = http.run(
        "core.http",
        {
            "url": f"{server}/echo",
            "method": "post",
            "json": {"a": [1, 2]},
            "headers": {"X-Token": "abc"},
        },
    )

    seen = result.result["body"]
    assert seen["method"] == "POST"
    assert json.loads(seen["body"]) == {"a": [1, 2]}
    assert seen["content_type"] == "application/json"
    assert seen["x_token"] == "abc"


def test_a_raw_body_and_a_text_response(http, server):
    sent = http.run("core.http", {"url": f"{server}/echo", "method": "PUT", "body": "raw text"})
    text = http.run("core.http", {"url": f"{server}/text"})

    assert sent.result["body"]["body"] == "raw text"
    assert text.result["body"] == "plain text, é"


def test_an_unexpected_status_fails_with_the_status_and_an_excerpt(http, server):
    result = http.run("core.http", {"url": f"{server}/missing?key=abc"})

    kind, message = _error(result)
    assert kind == "HTTPStatusError"
    assert "404" in message
    assert "no such thing" in message
    assert "key=abc" not in message  # query strings may carry credentials
    assert result.error.details["status_code"] == 404


def test_expected_status_makes_other_codes_a_success(http, server):
    one = http.run("core.http", {"url": f"{server}/missing", "expected_status": 404})
    many = http.run("core.http", {"url": f"{server}/missing", "expected_status": [200, 404]})
    wrong = http.run("core.http", {"url": f"{server}/text", "expected_status": [201]})

    assert one.result["body"] == {"error": "no such thing"}
    assert many.outcome is AttemptStatus.SUCCEEDED
    kind, message = _error(wrong)
    assert kind == "HTTPStatusError"
    assert "expected 201" in message


def test_a_connection_error(http):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    kind, message = _error(http.run("core.http", {"url": f"http://127.0.0.1:{port}/"}))

    assert kind == "HTTPError"
    assert "ConnectError" in message


def test_a_request_over_its_timeout(http, server):
    kind, message = _error(http.run("core.http", {"url": f"{server}/hang", "timeout": 0.2}))

    assert kind == "HTTPError"
    assert "timed out after 0.2 seconds" in message


def test_a_response_over_the_payload_limit(http, server):
    kind, message = _error(http.run("core.http", {"url": f"{server}/big"}))

    assert kind == "PayloadTooLarge"
    assert "5000 bytes" in message


def test_json_and_body_together_are_refused(http, server):
    kind, message = _error(
        http.run("core.http", {"url": f"{server}/echo", "json": {}, "body": "x"})
    )

    assert kind == "InvalidInput"
    assert "not both" in message


def test_an_invalid_url(http):
    kind, _ = _error(http.run("core.http", {"url": "not a url"}))

    assert kind == "HTTPError"
