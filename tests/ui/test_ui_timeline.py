"""The timeline of attempts on a run's page, without a browser.

A run is carried out for real by the embedded runner (its thread pool is the worker,
``embedded``) on the test's SQLite database: a task that fails once and is retried, then a
with_items task over two items. Its page, read through ``create_app`` as a viewer, shows
each attempt as a row (task, item, attempt number, worker, status by word and symbol) with
its bar on one time axis, and the bound on how many are shown.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import issue_token
from tests.ui.conftest import PACKS

from treadle.api.ui.attempt_timeline import TIMELINE_LIMIT, lay_out
from treadle.common.access import Role
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import AttemptEntry, Store
from treadle.scheduler.store.attempt_listing import AttemptLine, AttemptListing, latest_attempts

#: Fails, is retried once (failing again), then fans out over two items.
RETRIED = """\
ref: ui.retried
tasks:
  - name: flaky
    action: core.fail
    input: {message: "no luck"}
    retry: {count: 1, delay: 0}
    next:
      - when: "{{ failed() }}"
        do: [fan]
  - name: fan
    action: core.noop
    with_items: [a, b]
"""


@pytest.fixture
def finished_run(store: Store) -> str:
    """A run of ``ui.retried`` carried out to its end by the embedded runner."""
    settings = Settings(database_url=str(store.engine.url))
    catalog = load_packs([PACKS])
    runner = EmbeddedRunner(settings, catalog, store=store)
    try:
        run_id = runner.start(load_workflow_text(textwrap.dedent(RETRIED), "<ui>"), {})
        runner.follow(run_id)
    finally:
        runner.pool.close()  # the store is the fixture's
    return run_id


def _log_in(web: TestClient, store: Store) -> None:
    token = issue_token(store, "viewer-1", Role.VIEWER, datetime.now(UTC))
    form = web.get("/ui/login")
    guard = re.search(r'name="guard" value="([^"]+)"', form.text)
    assert guard is not None
    done = web.post("/ui/login", data={"guard": guard.group(1), "token": token, "next": "/"})
    assert done.status_code == 303


def _rows(html: str) -> list[list[str]]:
    """The timeline table's rows, each cell's text without tags."""
    section = html.split('id="live-timeline"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append([" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells])
    return rows


def test_the_run_page_shows_each_attempt_with_its_worker(
    web: TestClient, store: Store, finished_run: str
) -> None:
    _log_in(web, store)
    page = web.get(f"/ui/runs/{finished_run}")
    assert page.status_code == 200
    assert "Timeline of attempts" in page.text
    assert "All 4 attempts (at most 200 are shown)" in page.text
    shown = [tuple(cells[:5]) for cells in _rows(page.text)]
    assert shown[:2] == [
        ("flaky", "—", "1", "embedded", "✗ failed"),
        ("flaky", "—", "2", "embedded", "✗ failed"),
    ]
    assert sorted(shown[2:]) == [  # the two items may be dispatched in the same instant
        ("fan", "0", "1", "embedded", "✓ succeeded"),
        ("fan", "1", "1", "embedded", "✓ succeeded"),
    ]
    # each row has its times and a bar; the bars are drawn for the eye only
    for cells in _rows(page.text):
        dispatched, queued, ran = cells[5:8]
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", dispatched), cells
        assert re.fullmatch(r"\d+ ms|\d+\.\d s", queued), cells
        assert re.fullmatch(r"\d+ ms|\d+\.\d s", ran), cells  # none is open
    assert page.text.count('<svg class="bar"') == 4
    assert 'class="bar" width="100%" height="14" aria-hidden="true"' in page.text
    # the live part carries the same timeline
    live = web.get(f"/ui/runs/{finished_run}/live")
    assert _rows(live.text) == _rows(page.text)


def test_the_timeline_keeps_the_latest_attempts_and_says_so(
    store: Store, finished_run: str
) -> None:
    with store.unit_of_work() as uow:
        two = latest_attempts(uow.connection, finished_run, 2)
        every = latest_attempts(uow.connection, finished_run, 100)
    assert (two.total, every.total) == (4, 4)
    assert two.lines == every.lines[2:]  # the latest two, oldest first
    assert [line.task for line in every.lines[:2]] == ["flaky", "flaky"]
    assert [line.attempt.attempt for line in every.lines[:2]] == [1, 2]


def _line(
    task: str, item: int | None, start: float, ran: float | None, *, open_: bool = False
) -> AttemptLine:
    """An attempt dispatched ``start`` s after T0, started 1 s later and running ``ran`` s
    (``None``: still queued; ``open_``: still running)."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    started = None if ran is None else t0 + timedelta(seconds=start + 1)
    finished = None if open_ or started is None or ran is None else started + timedelta(seconds=ran)
    status = AttemptStatus.RUNNING if open_ else AttemptStatus.SUCCEEDED
    if ran is None:
        status = AttemptStatus.QUEUED
    entry = AttemptEntry(
        attempt_id=f"r-1/1/{item or 0}/1",
        run_id="r-1",
        execution_id=1,
        position=item or 0,
        attempt=1,
        action_ref="core.noop",
        queue=None,
        status=status,
        worker=None if ran is None else "w-1",
        dispatched_at=t0 + timedelta(seconds=start),
        started_at=started,
        finished_at=finished,
        deadline=None,
        error=None,
        reason=None,
    )
    return AttemptLine(task, item, entry)


def test_bars_share_one_axis_and_open_attempts_end_now() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=10)
    listing = AttemptListing(
        (
            _line("a", None, 0, 4),  # queued 0-1 s, ran 1-5 s
            _line("b", 0, 4, None),  # still queued since 4 s
            _line("c", 1, 2, 0, open_=True),  # started at 3 s, running until now (10 s)
        ),
        total=250,
    )
    timeline = lay_out(listing, now)
    a, b, c = timeline.bars
    assert (a.queued_offset, a.queued_width, a.run_offset, a.run_width) == (0, 10, 10, 40)
    assert (a.queued_seconds, a.ran_seconds, a.open) == (1, 4, False)
    assert (b.queued_offset, b.queued_width, b.run_offset, b.queued_seconds) == (40, 60, None, 6)
    assert (c.run_offset, c.run_width, c.ran_seconds, c.open) == (30, 70, 7, True)
    assert [tick.label for tick in timeline.ticks] == ["0 ms", "2.5 s", "5.0 s", "7.5 s", "10.0 s"]
    assert timeline.bounded
    assert timeline.limit == TIMELINE_LIMIT
    nothing = lay_out(AttemptListing((), total=0), now)
    assert (nothing.bars, nothing.ticks, nothing.start, nothing.bounded) == ((), (), None, False)
