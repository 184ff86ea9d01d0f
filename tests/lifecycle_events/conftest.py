"""Fixtures for the lifecycle-event tests: runners writing events, a webhook sink to post to.

Runs use the real embedded runner on a SQLite file (with the shipped packs and the dialect
tests' stub pack, for workflows/v1 imports); the workflows/v1 conformance fixtures are read
where they live (``../shared/conformance/workflows-v1``) and the tests needing them skip
when they are absent. :class:`SinkServer` is a real HTTP server on 127.0.0.1 recording
each request and answering the status it is told to. :class:`StepClock` is the pump's
clock: tests move it instead of sleeping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.dialects.conftest import SHIPPED_PACKS, STUBS, V1, read_json

from treadle.common.catalog import Catalog
from treadle.common.dialects import import_workflows_v1
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.events import EventRouter
from treadle.scheduler.store import Store
from treadle.scheduler.store.lifecycle_repo import LifecycleEventEntry

T0 = datetime(2026, 4, 13, 14, 30, tzinfo=UTC)
SDR_EVENT = "evt_tap_hubspot_contact_created_acme"
SINK_SECRET = "whsec_lifecycle-test-secret-0123456789"


@dataclass
class StepClock:
    """A clock that moves only when told."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    loaded = load_packs([SHIPPED_PACKS, STUBS])
    assert [str(issue) for issue in loaded.issues] == []
    return loaded


@pytest.fixture
def v1_dir() -> Path:
    """``shared/conformance/workflows-v1``; the test is skipped when it is absent."""
    if not V1.is_dir():
        pytest.skip(f"workflows/v1 conformance fixtures not found at {V1}")
    return V1


@pytest.fixture
def make_runner(tmp_path: Path, catalog: Catalog) -> Iterator[Callable[..., EmbeddedRunner]]:
    """``make_runner(**settings)``: an embedded runner on a SQLite file of its own, with
    lifecycle events on unless the settings say otherwise."""
    runners: list[EmbeddedRunner] = []

    def make(**settings: Any) -> EmbeddedRunner:
        url = f"sqlite:///{tmp_path / f'lifecycle-{len(runners)}.db'}"
        settings.setdefault("lifecycle_events", True)
        runner = EmbeddedRunner(Settings(database_url=url, **settings), catalog)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


def chain(ref: str = "demo.chain", tasks: int = 2) -> WorkflowSpec:
    """``tasks`` core.noop tasks one after the other."""
    lines = [f"ref: {ref}", "tasks:"]
    for i in range(tasks):
        lines.append(f"  - name: t{i}\n    action: core.noop")
        if i + 1 < tasks:
            lines.append(f"    on_success: t{i + 1}")
    return load_workflow_text("\n".join(lines) + "\n", f"{ref}.yaml")


def run_chain(runner: EmbeddedRunner, spec: WorkflowSpec | None = None) -> str:
    run_id = runner.start(spec or chain(), {})
    runner.follow(run_id)
    return run_id


def sdr_run(runner: EmbeddedRunner, v1_dir: Path) -> str:
    """The SDR pipeline started by its recorded webhook event; it waits at the approval."""
    path = v1_dir / "publish_version_response.json"
    spec = import_workflows_v1(path.read_text(encoding="utf-8"), str(path))
    runner.definitions.publish(spec, at=runner.clock())
    recorded = read_json(v1_dir / "get_run_response.json")["run"]
    outcome = EventRouter(runner.starter).send(
        "hubspot.contact.created", data=recorded["input_payload"], event_id=SDR_EVENT
    )
    [run_id] = outcome.started_runs
    runner.follow_all([run_id])
    return run_id


def stored_events(store: Store, run_id: str | None = None) -> list[LifecycleEventEntry]:
    with store.snapshot() as uow:
        return uow.list_lifecycle_events(run_id=run_id, limit=10_000)


def types_of(events: list[LifecycleEventEntry]) -> list[str]:
    return [e.type.removeprefix("workflows.changes.") for e in events]


@dataclass
class Received:
    """One request the sink server got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SinkServer:
    """A local HTTP server: records every request, answers ``status``."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int = 204

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/treadle"


@pytest.fixture
def sink_server() -> Iterator[SinkServer]:
    holder: list[SinkServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            sink = holder[0]
            sink.received.append(
                Received(self.path, dict(self.headers.items()), self.rfile.read(length))
            )
            self.send_response(sink.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(SinkServer(server))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
