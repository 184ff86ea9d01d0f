"""The run page's live stream, woken by PostgreSQL's NOTIFY or, on SQLite, by the embedded
runner's saves in the API process (``docs/ui.md``, "Live updates").

Each test serves a real app with uvicorn on a thread of the test and reads
``GET /ui/runs/{id}/stream`` line by line as a browser would, logged in with a token.
The streams' own looks (the fallback poll, and the polling while no notice can be heard)
and their lifetime are set to an hour unless the test is about them, so an event that
arrives at all (each read waits at most 30 s) was woken by a notice: no wall-clock
thresholds. Changes are made through another engine (a
``treadle.Client``, or a ``treadle`` process), as another API process or the CLI would.
When the server stops, the listener's thread and its PostgreSQL connection are gone.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event, text
from tests.api.conftest import issue_token
from tests.ui.conftest import ASK, PACKS

from treadle.api.app import create_app
from treadle.api.run_changes import RunChanges
from treadle.api.ui import run_routes
from treadle.client import Client
from treadle.clientlib.starting import run_starter
from treadle.common.access import Role
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.secret_box import SECRET_KEY_VARIABLE, generate_key
from treadle.common.settings import Settings
from treadle.common.statuses import InquiryStatus
from treadle.embedded.background import BackgroundScheduler
from treadle.scheduler.core.events import PauseRequested
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store import Store, prepared
from treadle.scheduler.store.run_notices import MANY_RUNS_CHANGED, RUN_CHANGES_CHANNEL
from treadle.testing.processes import TREADLE, treadle_environment, wait_until
from treadle.testing.redis_server import free_port

#: Stays running without a scheduler: its first task's dispatch waits in the outbox.
SINGLE = """\
ref: live.single
tasks:
  - name: only
    action: core.noop
"""

HOUR = 3600.0
Event = tuple[str, dict[str, Any]]


class Stream:
    """A run's server-sent events, read as they come (each read waits at most 30 s)."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines = response.iter_lines()

    def next_event(self) -> Event:
        name: str | None = None
        data: dict[str, Any] = {}
        try:
            for line in self._lines:
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                elif not line and name is not None:
                    return name, data
        except httpx.ReadTimeout:
            raise AssertionError("no event within 30 s: nothing woke the stream") from None
        raise AssertionError("the stream ended")


@dataclass
class Served:
    """A served app, its streams' hub, and an HTTP client logged in to its UI."""

    changes: RunChanges
    http: httpx.Client

    @contextmanager
    def stream(self, run_id: str) -> Iterator[Stream]:
        with self.http.stream("GET", f"/ui/runs/{run_id}/stream") as response:
            yield Stream(response)

    def wait_watched(self, run_id: str) -> None:
        """Until the stream waits on ``run_id`` and notices can be heard."""
        changes = self.changes
        wait_until(
            lambda: changes.live and changes.watchers(run_id) == 1,
            20,
            f"a stream watching {run_id} with notices heard",
            describe=lambda: f"live={changes.live} watchers={changes.watchers(run_id)}",
        )


def _log_in(http: httpx.Client, token: str) -> None:
    form = http.get("/ui/login")
    guard = re.search(r'name="guard" value="([^"]+)"', form.text)
    assert guard is not None, form.text
    done = http.post("/ui/login", data={"guard": guard.group(1), "token": token, "next": "/ui"})
    assert done.status_code == 303, done.text


def listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "treadle-run-changes"]


@contextmanager
def serving(url: str, token: str, embedded: BackgroundScheduler | None = None) -> Iterator[Served]:
    """The app on ``url`` served by uvicorn on a thread; stopped (lifespan included) after."""
    app = create_app(Settings(database_url=url), embedded=embedded)
    changes: RunChanges = app.state.run_changes
    changes.poll_seconds = changes.fallback_seconds = HOUR
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn")
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 30, "uvicorn serving")
        assert server.started, "uvicorn did not start"
        timeout = httpx.Timeout(30.0)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as http:
            _log_in(http, token)
            yield Served(changes, http)
    finally:
        server.should_exit = True
        thread.join(60)
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(autouse=True)
def long_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams last an hour: one ending (and its last look) delivers nothing either."""
    monkeypatch.setattr(run_routes, "STREAM_SECONDS", HOUR)


@pytest.fixture
def postgres(
    fresh_database_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Store, str]]:
    """A migrated PostgreSQL database with ``live.single`` and ``ui.ask``, a viewer's token,
    and the key a shared database seals sessions with."""
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_key())
    url = fresh_database_url("postgresql")
    store = Store.open(url)
    with Client(url) as client:
        catalog = load_packs([PACKS])
        for source in (SINGLE, ASK):
            client.register(load_workflow_text(textwrap.dedent(source), "<live>"), catalog=catalog)
    token = issue_token(store, "viewer-1", Role.VIEWER, datetime.now(UTC))
    yield url, store, token
    store.close()


def _backends(store: Store) -> set[int]:
    with store.snapshot() as uow:
        rows = uow.connection.execute(text("SELECT pid FROM pg_stat_activity"))
        return {int(row[0]) for row in rows}


def _terminate(store: Store, pid: int) -> None:
    with store.unit_of_work() as uow:
        uow.connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


# -- PostgreSQL ----------------------------------------------------------------------------------


def test_a_change_saved_by_another_process_wakes_the_stream_at_once(
    postgres: tuple[str, Store, str],
) -> None:
    url, store, token = postgres
    with Client(url) as client:
        run_id = client.start("live.single")
    with serving(url, token) as served:
        with served.stream(run_id) as stream:
            assert stream.next_event() == ("run", {"version": 2, "status": "running"})
            served.wait_watched(run_id)
            listener = served.changes.listener
            assert listener is not None
            pid = listener.backend_pid
            environment = treadle_environment(database_url=url, log_level="WARNING")
            paused = subprocess.run(
                [str(TREADLE), "runs", "pause", run_id, "--reason", "look", "--distributed"],
                env=environment,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert paused.returncode == 0, paused.stderr
            name, data = stream.next_event()  # woken by the NOTIFY: every poll is an hour
        assert name == "run"
        assert data["version"] == 3
        with Client(url) as client:
            assert data["status"] == client.get(run_id).status.value
        # one LISTEN connection for the whole process, not one per stream
        with served.stream(run_id) as again:
            again.next_event()
            wait_until(lambda: served.changes.watchers(run_id) == 1, 20, "the second stream")
            assert listener.backend_pid == pid
            assert len(listener_threads()) == 1
    assert listener_threads() == []  # the app's shutdown ended the thread ...
    assert pid not in _backends(store)  # ... and closed its connection


def test_a_lost_listener_falls_back_to_polling(postgres: tuple[str, Store, str]) -> None:
    url, store, token = postgres
    with Client(url) as client:
        run_id = client.start("live.single")
        with serving(url, token) as served, served.stream(run_id) as stream:
            stream.next_event()
            served.wait_watched(run_id)
            listener = served.changes.listener
            assert listener is not None
            assert listener.backend_pid is not None
            listener.first_retry = HOUR  # it does not come back during this test
            served.changes.poll_seconds = 0.2  # the polling while deaf
            _terminate(store, listener.backend_pid)
            wait_until(lambda: not served.changes.live, 20, "the listener noticing its loss")
            client.control(run_id, "pause")
            name, data = stream.next_event()  # no notice can be heard: polled
            assert (name, data["version"]) == ("run", 3)
            assert served.changes.seconds_between_looks() == 0.2
    assert listener_threads() == []


def test_a_lost_listener_listens_again_and_wakes_streams_at_once(
    postgres: tuple[str, Store, str],
) -> None:
    url, store, token = postgres
    with Client(url) as client:
        run_id = client.start("live.single")
        with serving(url, token) as served, served.stream(run_id) as stream:
            stream.next_event()
            served.wait_watched(run_id)
            listener = served.changes.listener
            assert listener is not None
            lost = listener.backend_pid
            assert lost is not None
            listener.first_retry = 0.05
            _terminate(store, lost)

            def listening_again() -> bool:
                return listener.listening and listener.backend_pid not in (None, lost)

            wait_until(listening_again, 20, "a new LISTEN connection")
            client.control(run_id, "pause")
            name, data = stream.next_event()  # polls are an hour: the new connection heard it
            assert (name, data["version"]) == ("run", 3)
    assert listener_threads() == []


def test_a_batch_too_large_for_one_notice_says_many_changed(
    postgres: tuple[str, Store, str],
) -> None:
    url, store, token = postgres
    catalog = load_packs([PACKS])
    definitions = Definitions(store, catalog)
    settings = Settings(database_url=url)
    runs = run_starter(store, definitions, settings, clock=lambda: datetime.now(UTC)).runs
    counter = iter(range(1000))
    long_ids = RunStarter(runs, run_ids=lambda: f"r-{'x' * 200}-{next(counter)}")
    short = iter(range(1000))
    spec = load_workflow_text(SINGLE, "<live>")
    many = [long_ids.start(spec, {}) for _ in range(45)]  # 45 x 205 bytes > 8000
    few = [
        RunStarter(runs, run_ids=lambda: f"r-few-{next(short)}").start(spec, {}) for _ in range(3)
    ]
    listening = store.engine.raw_connection()
    try:
        raw: Any = listening.dbapi_connection
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute(f"LISTEN {RUN_CHANGES_CHANNEL}")
        with serving(url, token) as served, served.stream(many[-1]) as stream:
            stream.next_event()
            served.wait_watched(many[-1])
            for batch in (few, many):
                with store.unit_of_work() as uow:
                    pauses = [(run_id, PauseRequested(reason="batch")) for run_id in batch]
                    runs.apply_in(uow, pauses)
            name, data = stream.next_event()  # woken by "many changed"
            assert (name, data["version"]) == ("run", 3)

            heard: list[str] = []

            def two_notices() -> bool:
                raw.poll()
                heard.extend(notice.payload for notice in raw.notifies)
                raw.notifies.clear()
                return len(heard) >= 2

            wait_until(two_notices, 20, "two notices", describe=lambda: str(heard))
        assert len(heard) == 2, heard  # one notice per saved batch
        assert set(heard[0].split()) == set(few)
        assert heard[1] == MANY_RUNS_CHANGED
    finally:
        listening.close()


def test_the_notice_rides_on_a_run_rows_update(postgres: tuple[str, Store, str]) -> None:
    url, store, _ = postgres
    definitions = Definitions(store, load_packs([PACKS]))
    settings = Settings(database_url=url)
    starter = run_starter(store, definitions, settings, clock=lambda: datetime.now(UTC))
    run_id = starter.start(load_workflow_text(SINGLE, "<live>"), {})
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith(f"PREPARE {prepared.PREFIX}"):  # (its EXECUTE shows)
            statements.append(prepared.original(statement))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.unit_of_work() as uow:
            starter.runs.apply_in(uow, [(run_id, PauseRequested(reason="one"))])
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    noticed = [s for s in statements if "pg_notify" in s]
    assert len(noticed) == 1, statements  # no statement of its own: the run rows' UPDATE
    update = noticed[0].split("UPDATE runs AS t SET", 1)  # (one of the save's writes)
    assert len(update) == 2, noticed
    assert "pg_notify('treadle_run_changes'" in update[1], noticed


def test_with_notices_turned_off_saves_send_none_and_the_api_polls(
    postgres: tuple[str, Store, str],
) -> None:
    """TREADLE_RUN_CHANGE_NOTICES=false: commits keep their concurrency, pages poll."""
    url, store, _ = postgres
    definitions = Definitions(store, load_packs([PACKS]))
    settings = Settings(database_url=url, run_change_notices=False)
    store.run_change_notices = True  # the app sets it from its settings, as every process does
    starter = run_starter(store, definitions, settings, clock=lambda: datetime.now(UTC))
    run_id = starter.start(load_workflow_text(SINGLE, "<live>"), {})
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith(f"PREPARE {prepared.PREFIX}"):  # (its EXECUTE shows)
            statements.append(prepared.original(statement))

    app = create_app(settings, store=store)
    assert store.run_change_notices is False
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.unit_of_work() as uow:
            starter.runs.apply_in(uow, [(run_id, PauseRequested(reason="quiet"))])
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert any("UPDATE runs AS t SET" in s for s in statements), statements
    assert not [s for s in statements if "pg_notify" in s]

    changes: RunChanges = app.state.run_changes
    assert changes.listener is None  # nothing to hear: no LISTEN connection at all
    assert not changes.live
    assert changes.seconds_between_looks() == changes.poll_seconds


# -- SQLite: the embedded runner in the API process ----------------------------------------------


def test_on_sqlite_the_embedded_runners_saves_wake_the_stream(
    fresh_database_url: Callable[[str], str],
) -> None:
    url = fresh_database_url("sqlite")
    store = Store.open(url)
    catalog = load_packs([PACKS])
    token = issue_token(store, "viewer-1", Role.VIEWER, datetime.now(UTC))
    with Client(url) as client:
        client.register(load_workflow_text(textwrap.dedent(ASK), "<live>"), catalog=catalog)
        embedded = BackgroundScheduler(Settings(database_url=url), catalog)
        with serving(url, token, embedded) as served:
            assert served.changes.listener is None
            run_id = client.start("ui.ask")

            def pending() -> list[Any]:
                with store.snapshot() as uow:
                    return uow.list_inquiries(status=InquiryStatus.PENDING, run_id=run_id)

            [inquiry] = wait_until(pending, 30, f"run {run_id} asking")
            with served.stream(run_id) as stream:
                assert stream.next_event()[0] == "run"
                served.wait_watched(run_id)
                # Answered through another engine (as the CLI would): that save tells
                # nobody; the embedded runner then runs `ship` and its save wakes the stream.
                client.respond(inquiry.id, {"approved": True, "replicas": 2})
                events = [stream.next_event()]
                while events[-1][0] != "ended":
                    events.append(stream.next_event())
            assert events[-1] == ("ended", {})
            assert events[-2][0] == "run"
            assert events[-2][1]["status"] == "succeeded"
    assert store.runs_saved == []  # the app's shutdown took its hooks back
    assert embedded.runner.store.runs_saved == []
    store.close()
