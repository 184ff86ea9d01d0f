"""deploy/grafana/treadle-dashboard.json imports anywhere and shows what the issue lists:
a data-source variable and no fixed data source, no link out of Grafana, every panel with
a unit, laid out in rows, and a panel for each of the things operators watch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.deploy.promql import metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "treadle-dashboard.json"

#: What must be on the dashboard, and a series each shows it by.
MUST_SHOW = {
    "run starts": "treadle_runs_started_total",
    "run ends by status": "treadle_runs_finished_total",
    "task throughput": "celery_task_succeeded_total",
    "task failures": "celery_task_failed_total",
    "task duration percentiles": "treadle_task_duration_seconds_bucket",
    "completion -> dispatch latency percentiles": "treadle_dispatch_latency_seconds_bucket",
    "queue lengths": "celery_queue_length",
    "queue consumers": "celery_active_consumer_count",
    "workers up": "celery_worker_up",
    "outbox pending": "treadle_outbox_pending",
    "outbox age": "treadle_outbox_oldest_age_seconds",
    "timers overdue": "treadle_timers_overdue",
    "inquiries pending": "treadle_inquiries_pending",
    "schedule fires by outcome": "treadle_schedule_fires_total",
    "flow-control waits": "treadle_flow_waits_total",
}


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def _panels() -> list[dict[str, Any]]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def test_it_is_a_current_grafana_dashboard() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] == 39
    assert dashboard["title"]
    assert dashboard["uid"]


def test_the_data_source_is_a_variable() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    fixed = [
        f"{panel['title']}: {source}"
        for panel in _panels()
        for source in [panel.get("datasource"), *(t.get("datasource") for t in panel["targets"])]
        if source != {"type": "prometheus", "uid": "${datasource}"}
    ]
    assert fixed == [], "\n".join(fixed)


def test_it_links_nowhere_outside_grafana() -> None:
    assert _dashboard().get("links", []) == []
    text = DASHBOARD.read_text(encoding="utf-8")
    assert "http://" not in text
    assert "https://" not in text


def test_every_panel_has_a_title_a_description_a_unit_and_queries() -> None:
    problems = []
    for panel in _panels():
        title = panel.get("title", "")
        if not title or not panel.get("description"):
            problems.append(f"panel {panel['id']}: no title or description")
        if not panel["fieldConfig"]["defaults"].get("unit"):
            problems.append(f"{title}: no unit")
        if not panel.get("targets") or not all(t.get("expr") for t in panel["targets"]):
            problems.append(f"{title}: no query")
    assert problems == [], "\n".join(problems)


def test_panels_sit_in_rows_on_the_grid_without_overlapping() -> None:
    panels = _dashboard()["panels"]
    assert panels[0]["type"] == "row"
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize(("what", "series"), MUST_SHOW.items(), ids=list(MUST_SHOW))
def test_it_shows(what: str, series: str) -> None:
    shown = {
        name for panel in _panels() for t in panel["targets"] for name in metric_names(t["expr"])
    }
    assert series in shown, f"no panel shows {what} ({series})"


def test_percentiles_are_histogram_quantiles() -> None:
    for series in (
        "treadle_task_duration_seconds_bucket",
        "treadle_dispatch_latency_seconds_bucket",
    ):
        queries = [
            t["expr"] for panel in _panels() for t in panel["targets"] if series in t["expr"]
        ]
        assert queries, series
        assert all(q.startswith("histogram_quantile(") and "by (le)" in q for q in queries), queries
