"""Every metric Treadle exports, as data: name, kind, labels, help, and the process that
counts it.

One list, so the processes that export metrics, the alert rules
(``deploy/prometheus/treadle-alerts.yml``), the Grafana dashboard and the docs' metrics
table all name the same series, and a test checks each rule and panel against it. The
``celery_*`` metrics keep the names and labels of celery-exporter, so dashboards made for
it work on Treadle as they are. No label ever holds a run id (cardinality stays bounded:
workflows, actions, queues, hosts, statuses).

Plain data: the processes build prometheus-client collectors from it at their edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricKind(StrEnum):
    """The Prometheus type of a metric."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class MetricSource(StrEnum):
    """The process that sees what a metric measures, and so exports it."""

    SCHEDULER = "scheduler"
    WORKER = "worker"
    API = "api"
    BEAT = "beat"
    RUNS = "runs"  # whichever process saves the change: scheduler, API, beat


#: Seconds: from a few milliseconds (a dispatch) to an hour (a long task or run).
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 3600.0,
)  # fmt: skip
#: Bytes of a run's context (parameters, published variables, results).
SIZE_BUCKETS = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
#: US dollars per step.
COST_BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric. ``name`` is the name given to prometheus-client: counters are exported
    with ``_total`` after it, histograms as ``_bucket``, ``_sum`` and ``_count``."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    source: MetricSource
    buckets: tuple[float, ...] | None = None

    @property
    def series(self) -> tuple[str, ...]:
        """The series names Prometheus stores for this metric."""
        if self.kind is MetricKind.COUNTER:
            return (f"{self.name}_total",)
        if self.kind is MetricKind.HISTOGRAM:
            return tuple(f"{self.name}{part}" for part in ("_bucket", "_sum", "_count"))
        return (self.name,)


_TASK = ("name", "hostname", "queue_name")  # celery-exporter's labels
C, G, H = MetricKind.COUNTER, MetricKind.GAUGE, MetricKind.HISTOGRAM
S, W, A, B, R = (
    MetricSource.SCHEDULER,
    MetricSource.WORKER,
    MetricSource.API,
    MetricSource.BEAT,
    MetricSource.RUNS,
)

CATALOG: tuple[MetricSpec, ...] = (
    # -- celery-exporter's names -----------------------------------------------------------
    MetricSpec("celery_task_sent", C, "Task messages published (by the scheduler).", _TASK, S),
    MetricSpec("celery_task_received", C, "Tasks a worker received.", _TASK, W),
    MetricSpec("celery_task_started", C, "Tasks a worker started.", _TASK, W),
    MetricSpec("celery_task_succeeded", C, "Tasks that succeeded.", _TASK, W),
    MetricSpec("celery_task_failed", C, "Tasks that failed.", (*_TASK, "exception"), W),
    MetricSpec("celery_task_retried", C, "Attempts whose task runs again.", _TASK, S),
    MetricSpec("celery_task_revoked", C, "Attempts revoked (cancelled).", _TASK, S),
    MetricSpec(
        "celery_task_rejected", C, "Task messages a worker rejected (dead-lettered).", _TASK, W
    ),
    MetricSpec(
        "celery_task_runtime", H, "Seconds tasks ran on a worker.", _TASK, W, DURATION_BUCKETS
    ),
    MetricSpec("celery_queue_length", G, "Messages waiting in a queue.", ("queue_name",), S),
    MetricSpec("celery_active_consumer_count", G, "Consumers of a queue.", ("queue_name",), S),
    MetricSpec("celery_worker_up", G, "1 while a worker answers.", ("hostname",), S),
    MetricSpec("celery_worker_tasks_active", G, "Tasks a worker runs now.", ("hostname",), W),
    # -- runs -------------------------------------------------------------------------------
    MetricSpec("treadle_runs_started", C, "Runs started.", ("workflow",), R),
    MetricSpec("treadle_runs_finished", C, "Runs ended, by status.", ("workflow", "status"), R),
    MetricSpec(
        "treadle_run_duration_seconds",
        H,
        "Seconds from a run's start to its end.",
        ("workflow", "status"),
        R,
        DURATION_BUCKETS,
    ),
    MetricSpec(
        "treadle_task_duration_seconds",
        H,
        "Seconds from an attempt's dispatch to its end, by action and outcome.",
        ("action", "status"),
        S,
        DURATION_BUCKETS,
    ),
    MetricSpec(
        "treadle_dispatch_latency_seconds",
        H,
        "Seconds from an attempt's result reaching the scheduler to its successors' dispatch.",
        (),
        S,
        DURATION_BUCKETS,
    ),
    MetricSpec("treadle_task_retries", C, "Retries scheduled, by action.", ("action",), S),
    MetricSpec("treadle_template_errors", C, "Templates that failed to render.", ("workflow",), R),
    MetricSpec(
        "treadle_context_bytes",
        H,
        "Bytes of a run's context when it ends.",
        ("workflow",),
        R,
        SIZE_BUCKETS,
    ),
    MetricSpec(
        "treadle_runs_stalled",
        G,
        "Runs not ended that have not moved for TREADLE_STALLED_AFTER seconds and wait for "
        "no person, event or timer.",
        (),
        S,
    ),
    # -- the scheduler's queues -------------------------------------------------------------
    MetricSpec("treadle_outbox_pending", G, "Outbox messages not yet published.", (), S),
    MetricSpec(
        "treadle_outbox_oldest_age_seconds", G, "Age of the oldest unpublished message.", (), S
    ),
    MetricSpec("treadle_timers_overdue", G, "Timers past their fire time, not fired.", (), S),
    MetricSpec(
        "treadle_attempts_past_deadline", G, "Attempts queued or running past deadline.", (), S
    ),
    MetricSpec(
        "treadle_reconciler_actions",
        C,
        "Attempts the reconciler ended, by action (lost, timed_out, vanished, dead_letter).",
        ("action",),
        S,
    ),
    MetricSpec("treadle_inquiries_pending", G, "Inquiries waiting for an answer.", (), S),
    MetricSpec(
        "treadle_flow_waiting",
        G,
        "Dispatches held back, by kind (concurrency, rate).",
        ("kind",),
        S,
    ),
    MetricSpec("treadle_flow_waits", C, "Dispatches that had to wait, by kind.", ("kind",), R),
    MetricSpec(
        "treadle_state_save_seconds",
        H,
        "Seconds a transaction saving run state took.",
        (),
        S,
        DURATION_BUCKETS,
    ),
    MetricSpec(
        "treadle_state_save_failures", C, "Transactions saving run state that failed.", (), S
    ),
    # -- schedules --------------------------------------------------------------------------
    MetricSpec("treadle_schedule_fires", C, "Schedule fires, by outcome.", ("outcome",), B),
    # -- the API ----------------------------------------------------------------------------
    MetricSpec(
        "treadle_api_requests",
        C,
        "API requests, by route template, method and status code.",
        ("route", "method", "code"),
        A,
    ),
    MetricSpec(
        "treadle_api_request_seconds",
        H,
        "Seconds API requests took, by route template.",
        ("route",),
        A,
        DURATION_BUCKETS,
    ),
    # -- governance: budgets, the emergency stop, the sandbox, golden records, cost ---------
    MetricSpec(
        "treadle_budget_stops",
        C,
        "Runs stopped by a budget's limit, by kind (cost_usd, wall_time, attempts, items); "
        "steps failed by their cost ceiling count as step_cost_usd.",
        ("kind",),
        R,
    ),
    MetricSpec(
        "treadle_emergency_stop_active",
        G,
        "1 while an emergency stop holds the scope (global, workspace:<name>), 0 once lifted.",
        ("scope",),
        S,
    ),
    MetricSpec(
        "treadle_sandbox_checks",
        C,
        "Run starts and attempts the plan sandbox checked.",
        (),
        R,
    ),
    MetricSpec(
        "treadle_sandbox_refusals",
        C,
        "Run starts and attempts the plan sandbox refused, by reason.",
        ("reason",),
        R,
    ),
    MetricSpec(
        "treadle_golden_verifications",
        C,
        "Golden-record verifications through the API, by result (ok, mismatch, bad_signature).",
        ("result",),
        A,
    ),
    MetricSpec(
        "treadle_replay_divergences",
        C,
        "Replays through the API that diverged, once per cause found (added, removed, "
        "new_call, action, input, seed, published, status, run).",
        ("cause",),
        A,
    ),
    MetricSpec(
        "treadle_cost_usd",
        C,
        "US dollars runs' actions reported spending (cost_usd, or cost_cents / 100).",
        ("workflow",),
        R,
    ),
    MetricSpec(
        "treadle_step_cost_usd",
        H,
        "US dollars per step of an action that reported a cost.",
        ("action",),
        R,
        COST_BUCKETS,
    ),
)

#: Metric by name.
BY_NAME = {spec.name: spec for spec in CATALOG}


def exported_series() -> frozenset[str]:
    """Every series name a Prometheus scraping Treadle may hold."""
    return frozenset(series for spec in CATALOG for series in spec.series)


def of_source(source: MetricSource) -> tuple[MetricSpec, ...]:
    """The metrics one process exports."""
    return tuple(spec for spec in CATALOG if spec.source is source)
