"""Every alert rule and every dashboard query names series Treadle exports
(common/metrics_catalog.py), with labels those metrics have; and the name extractor that
checks it reads PromQL as it should.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy.promql import PromQLSyntaxError, metric_names, selectors

from treadle.common.metrics_catalog import CATALOG, MetricKind, exported_series

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "treadle-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "treadle-dashboard.json"

#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"instance", "job"})


def _labels_of_series() -> dict[str, frozenset[str]]:
    labels = {}
    for spec in CATALOG:
        for series in spec.series:
            extra = (
                {"le"}
                if spec.kind is MetricKind.HISTOGRAM and series.endswith("_bucket")
                else set()
            )
            labels[series] = frozenset(spec.labels) | extra | TARGET_LABELS
    return labels


def _rule_queries() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule['alert']}", rule["expr"]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_queries() -> Iterator[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            # Grafana's label_values(metric, label) is not PromQL: check its selector.
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            yield f"variable ${variable['name']}", match.group(1) if match else query


def _queries() -> list[tuple[str, str]]:
    return [*_rule_queries(), *_dashboard_queries()]


def _problems(where: str, expr: str) -> list[str]:
    known = _labels_of_series()
    found = selectors(expr)
    if not found:
        return [f"{where}: names no metric: {expr!r}"]
    problems = []
    for name, labels in sorted(found):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{where}: {name} is not a series Treadle exports{hint}")
        elif labels - known[name]:
            problems.append(
                f"{where}: {name} has no label {', '.join(sorted(labels - known[name]))} "
                f"(it has {', '.join(sorted(known[name]))})"
            )
    return problems


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        pytest.param(
            'sum by (le, workflow) (rate(treadle_run_duration_seconds_bucket{workflow=~"a|b",'
            ' le!="+Inf"}[5m] offset 1h)) / on (workflow) group_left (status)'
            ' treadle_runs_finished_total > bool 3 and "a_string" unless treadle_runs_stalled',
            {
                "treadle_run_duration_seconds_bucket",
                "treadle_runs_finished_total",
                "treadle_runs_stalled",
            },
            id="functions-modifiers-strings",
        ),
        pytest.param(
            "histogram_quantile(0.99, sum(rate(x_bucket[$__rate_interval])) by (le))"
            " > ignoring (instance) max without (job) (y) * 2",
            {"x_bucket", "y"},
            id="grafana-variable-and-trailing-by",
        ),
        pytest.param(
            '{__name__="celery_worker_up", hostname="w1"} == 0',
            {"celery_worker_up"},
            id="name-matcher",
        ),
        pytest.param(
            'max_over_time(up[1h:5m]) + count_values("v", build_info)',
            {"up", "build_info"},
            id="subquery",
        ),
        pytest.param("sum by (le) (rate(le[5m]))", {"le"}, id="label-list-is-not-a-metric"),
        pytest.param("vector(1) + time() - 3e2", set(), id="no-metric"),
    ],
)
def test_the_extractor_finds_the_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_extractor_reports_the_labels_each_selector_matches() -> None:
    assert selectors('a_total{x="1", y=~"2"} / {__name__="c", z!=""}') == {
        ("a_total", frozenset({"x", "y"})),
        ("c", frozenset({"z"})),
    }


@pytest.mark.parametrize("expr", ["sum(rate(x[5m])", "x}", "rate(x[5m)]", "x ; y"])
def test_the_extractor_refuses_what_it_cannot_read(expr: str) -> None:
    with pytest.raises(PromQLSyntaxError):
        metric_names(expr)


def test_a_name_treadle_does_not_export_is_reported() -> None:
    assert _problems("rule X", 'sum(rate(celery_tasks_sent_total{queue_name="q"}[5m]))') == [
        "rule X: celery_tasks_sent_total is not a series Treadle exports"
        " (did you mean celery_task_sent_total?)"
    ]
    assert _problems("rule Y", 'celery_queue_length{queue="q"}') == [
        "rule Y: celery_queue_length has no label queue (it has instance, job, queue_name)"
    ]


def test_there_are_queries_to_check() -> None:
    where = [where for where, _expr in _queries()]
    assert sum(w.startswith("rule ") for w in where) >= 16
    assert sum(w.startswith("panel ") for w in where) >= 20


def test_every_rule_and_query_names_series_treadle_exports() -> None:
    problems = [problem for where, expr in _queries() for problem in _problems(where, expr)]
    assert problems == [], "\n".join(problems)


def test_every_counter_is_read_as_a_rate_or_an_increase() -> None:
    """A counter's raw value means nothing on a graph or in an alert."""
    counters = {spec.series[0] for spec in CATALOG if spec.kind is MetricKind.COUNTER}
    counters |= {s for spec in CATALOG if spec.kind is MetricKind.HISTOGRAM for s in spec.series}
    problems = []
    for where, expr in _queries():
        if where.startswith("variable "):
            continue
        for name in metric_names(expr) & counters:
            if not re.search(rf"\b(rate|irate|increase)\(\s*{name}\b", expr):
                problems.append(f"{where}: {name} is not inside rate() or increase()")
    assert problems == [], "\n".join(problems)


def test_the_catalog_series_are_what_prometheus_client_exports() -> None:
    """The checks above rely on exported_series(): counters as _total, histograms as three."""
    series = exported_series()
    assert {"celery_task_sent_total", "celery_queue_length"} <= series
    assert {
        f"treadle_run_duration_seconds{part}" for part in ("_bucket", "_sum", "_count")
    } <= series
