"""Fixtures for events, inquiries, governance and notifications, in both modes.

* ``embedded``: an :class:`Embedded` harness, an in-process runner on a SQLite file with the
  shipped packs and the ``eventtest`` pack (``tests/events/packs``); events are sent with
  the same :class:`~treadle.scheduler.service.events.EventRouter` the CLI uses, and the
  runs they touch are carried on in-process, as ``treadle events send`` does.
* ``treadle``: runs the ``treadle`` command in a subprocess on its own SQLite file.
* ``webhook``: a real HTTP server on 127.0.0.1 that records what is POSTed to it.
* ``unreachable_url``: a local URL where nothing listens (connections are refused).
* ``run_started_by``: the run an event started of a workflow, read from the ``runs`` table.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.embedded.runner import FollowResult
from treadle.scheduler.service.events import EventOutcome, EventRouter
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.starting import RunOptions
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import runs
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.processes import treadle_environment

SHIPPED_PACKS = Path(__file__).resolve().parents[2] / "packs"
TEST_PACKS = Path(__file__).resolve().parent / "packs"
TREADLE = Path(sys.executable).parent / "treadle"


def run_started_by(store: Store, event_id: str, workflow: str) -> str | None:
    """The run ``event_id`` started of ``workflow``, if any (there is one per pair)."""
    with store.engine.connect() as connection:
        found: str | None = connection.execute(
            select(runs.c.id).where(
                runs.c.trigger_event_id == event_id, runs.c.workflow == workflow
            )
        ).scalar_one_or_none()
    return found


@pytest.fixture(name="run_started_by", scope="session")
def run_started_by_fixture() -> Callable[[Store, str, str], str | None]:
    return run_started_by


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    loaded = load_packs([SHIPPED_PACKS, TEST_PACKS])
    assert [str(issue) for issue in loaded.issues] == []
    return loaded


class Embedded:
    """An embedded runner with the test pack; start runs, send events, answer inquiries."""

    def __init__(self, database_url: str, catalog: Catalog) -> None:
        self.runner = EmbeddedRunner(Settings(database_url=database_url), catalog)
        self.router = EventRouter(self.runner.starter, identity={"login": "tester", "via": "test"})

    def close(self) -> None:
        self.runner.close()

    def start(self, ref: str, parameters: dict[str, Any] | None = None) -> FollowResult:
        spec = self.runner.catalog.workflow(ref)
        run_id = self.runner.start(spec, parameters or {}, RunOptions(identity={"login": "t"}))
        return self.runner.follow(run_id)

    def publish(self, ref: str) -> int:
        spec = self.runner.catalog.workflow(ref)
        return self.runner.definitions.publish(spec, at=self.runner.clock()).version

    def send(self, event_type: str, **options: Any) -> EventOutcome:
        """Send an event, then carry on every run it started or updated."""
        outcome = self.router.send(event_type, **options)
        touched = [*outcome.started_runs, *outcome.updated_runs]
        if touched:
            self.runner.follow_all(touched)
        return outcome

    def respond(self, run_id: str, response: Any) -> FollowResult:
        [inquiry] = self.pending(run_id)
        self.runner.respond(inquiry["id"], response, "tester")
        return self.runner.follow(run_id)

    def pending(self, run_id: str) -> list[dict[str, Any]]:
        return [i for i in self.document(run_id)["inquiries"] if i["status"] == "pending"]

    def document(self, run_id: str) -> dict[str, Any]:
        with self.runner.store.unit_of_work() as uow:
            return stored_run_document(uow, run_id)

    def version(self, run_id: str) -> int | None:
        with self.runner.store.unit_of_work() as uow:
            return uow.run_version(run_id)

    def waits(self, run_id: str) -> list[Any]:
        with self.runner.store.unit_of_work() as uow:
            return uow.list_event_waits(run_id=run_id)

    @staticmethod
    def task(document: dict[str, Any], name: str) -> dict[str, Any]:
        [found] = [t for t in document["tasks"] if t["name"] == name]
        return found

    def trigger_runs(self, event_id: str, workflow: str) -> str | None:
        return run_started_by(self.runner.store, event_id, workflow)


@pytest.fixture
def embedded(tmp_path: Path, catalog: Catalog) -> Iterator[Embedded]:
    made = Embedded(f"sqlite:///{tmp_path / 'events.db'}", catalog)
    try:
        yield made
    finally:
        made.close()


# -- the treadle command ---------------------------------------------------------------------


Result = CliResult


class Cli(TreadleCli):
    """``treadle`` in ``workdir`` with the given ``TREADLE_*`` settings (others removed)."""

    def __init__(self, workdir: Path, settings: Mapping[str, str] | None = None) -> None:
        env = {**treadle_environment(), **(settings or {})}
        super().__init__(workdir, env, in_process=True)


@pytest.fixture(scope="session")
def make_cli() -> type[Cli]:
    """The class behind ``treadle``, for fixtures of a wider scope."""
    return Cli


@pytest.fixture
def treadle(tmp_path: Path) -> Cli:
    """The command on a SQLite file of its own, with the test pack on its pack path."""
    return Cli(
        tmp_path,
        {
            "TREADLE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "TREADLE_PACK_PATHS": json.dumps([str(TEST_PACKS)]),
        },
    )


# -- a webhook receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookServer:
    """Records every POST; answers ``status`` (settable per test)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                server.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(server.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def unreachable_url() -> str:
    """A local port nobody listens on (bound, then closed: connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody"
