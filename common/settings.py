"""Settings as data: every knob Treadle reads from ``TREADLE_*`` environment variables.

The model is declared here so that the scheduler, the worker and the CLI agree on names
and defaults; it is instantiated only at the edges (the CLI, the services), which is where
the environment is read. Invalid values fail at start with the variable's name.
"""

from __future__ import annotations

import getpass
from enum import StrEnum
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from treadle.common.budget import BudgetCeilings, ceilings_from_setting
from treadle.common.errors import ConfigurationError
from treadle.common.event_sinks import EventSinks
from treadle.common.limits import Limits
from treadle.common.sandbox_policy import SandboxPolicies, policies_from_setting
from treadle.common.transport import QueueType

DEFAULT_DATABASE_URL = "sqlite:///.treadle/treadle.db"


class SchemaUpgrade(StrEnum):
    """Who brings the database's schema up to date (``TREADLE_SCHEMA_UPGRADE``;
    docs/deployment.md#schema-upgrades)."""

    AUTO = "auto"  #: ``treadle scheduler`` and ``treadle beat`` upgrade it at start
    WAIT = "wait"  #: only ``treadle db upgrade`` does; the services wait for it
    REFUSE = "refuse"  #: only ``treadle db upgrade`` does; the services exit at once


class Settings(BaseSettings):
    """Treadle's configuration. Nested values use ``__``: ``TREADLE_LIMITS__MAX_DEPTH=5``."""

    model_config = SettingsConfigDict(
        env_prefix="TREADLE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    pack_paths: list[str] = Field(default_factory=list)
    default_queue: str = "treadle.tasks"
    results_queue: str = "treadle.results"
    #: RabbitMQ: the results queue's type, the same in every process. ``classic`` lives on
    #: one node (no replication) and delivers each report without waiting for its disk
    #: write, about 1 ms less per step of a run (docs/scaling.md#tuning).
    results_queue_type: QueueType = QueueType.QUORUM
    shell_enabled: bool = False
    #: Bytes of what an action writes to stdout, and as many of stderr, an attempt keeps
    #: (the last ones; docs/packs.md#captured-output); 0 captures nothing.
    capture_output_bytes: int = Field(default=65536, ge=0, le=1024 * 1024)
    worker_threads: int = Field(default=8, ge=1, le=256)
    limits: Limits = Field(default_factory=Limits)
    delivery_limit: int = Field(default=5, ge=1, le=100)
    redis_visibility_timeout: int = Field(default=6 * 3600, ge=60)
    #: Redis: seconds before a report a scheduler took and never acknowledged (it died)
    #: is handed to a scheduler again; reports are applied within moments.
    redis_report_visibility_timeout: int = Field(default=60, ge=1)
    result_batch_size: int = Field(default=500, ge=1, le=10_000)
    reconcile_interval: float = Field(default=30.0, gt=0)
    #: A scheduler publishes the dispatches it decides right after its commit; their
    #: outbox rows are held this many seconds (no relay takes them meanwhile), which is
    #: how long they wait if the scheduler dies between commit and publish. 0: every
    #: dispatch goes through a relay pass instead (docs/scaling.md).
    outbox_hold_seconds: float = Field(default=10.0, ge=0, le=3600)
    #: Workers send Celery's task events from the start (``celery worker -E``). Off, as in
    #: Celery: Flower turns them on in the workers it watches (docs/deployment.md).
    worker_send_task_events: bool = False
    #: Seconds an action may run before its worker reports it started (RabbitMQ; 0: at
    #: once; Redis: always at once). Faster tasks send their result only, which carries
    #: the same facts (docs/deployment.md); until the notice, the attempt shows as queued.
    #: A quarter of a second by default: a person sees where a slow task runs at once,
    #: and short tasks in bulk cost one message less each (about a third less CPU).
    worker_started_notice_after: float = Field(default=0.25, ge=0, le=3600)
    #: Messages each worker process holds unacknowledged on RabbitMQ (Celery's
    #: ``worker_prefetch_multiplier``). 1 by default, so a worker busy with a long task
    #: hoards nothing another worker could run; 4 (Celery's default) saves a broker round
    #: trip per task for many short tasks (docs/scaling.md). Redis: always 1, since there
    #: a message reserved and not started for ``worker_lost_after`` counts as lost.
    worker_prefetch_multiplier: int = Field(default=1, ge=1, le=64)
    #: Messages a worker holds on RabbitMQ beyond what its processes run (beyond
    #: ``concurrency x worker_prefetch_multiplier``), so a process that finishes a short task
    #: finds the next one at hand instead of waiting for the broker's next delivery. 1 by
    #: default: at most one message waits behind long tasks in a busy worker
    #: (docs/scaling.md#tuning); 0 for workers that only run long tasks. Redis: always 0.
    worker_prefetch_spare: int = Field(default=1, ge=0, le=64)
    worker_lost_after: float = Field(default=60.0, gt=0)
    #: Seconds between looks for dispatches held back by concurrency keys and rate limits
    #: that may go now, when nothing is held; while something is, every step looks
    #: (docs/flow-control.md).
    flow_recheck_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Seconds between a scheduler's readings of its queues' lengths and consumers from the
    #: broker (for "why is it stuck" and the queue metrics; docs/operations.md).
    observe_seconds: float = Field(default=10.0, gt=0, le=3600)
    #: Seconds after which a run that has not ended, has not moved and waits for no
    #: person, event or timer counts as stalled (``treadle_runs_stalled``; docs/operations.md).
    stalled_after: float = Field(default=900.0, gt=0)
    log_level: str = "INFO"
    #: How the services write their log lines on stderr: ``json`` (one object a line),
    #: ``logfmt``, ``text`` (for people), or ``auto``: text on a terminal, else JSON
    #: (docs/operations.md#logs).
    log_format: Literal["json", "logfmt", "text", "auto"] = "auto"
    #: Where the services send OpenTelemetry spans: ``none``, ``file`` (OTLP/JSON lines
    #: appended to ``TREADLE_TRACE_FILE``) or ``otlp`` (OTLP over HTTP); needs the ``otel``
    #: extra (docs/operations.md#traces).
    trace_exporter: Literal["none", "file", "otlp"] = "none"
    trace_file: str | None = None
    #: The OTLP/HTTP (protobuf) traces endpoint of a collector.
    trace_otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    #: The spans' ``service.name`` (unset: ``treadle-scheduler``, ``treadle-worker``, ...).
    trace_service_name: str | None = None
    #: Requests an API token may make per minute, counted across every API process
    #: (429 with ``Retry-After`` beyond it); 0 turns the limit off.
    api_rate_limit_per_minute: int = Field(default=1200, ge=0)
    #: Seconds an API process trusts a token it verified in the database without checking
    #: it again: a revoked token may be accepted for at most this long (expiry is exact);
    #: 0 checks every request in the database (see docs/security.md).
    api_token_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    #: How far (seconds, either way) a webhook delivery's signed timestamp may be from the
    #: API server's clock; older or later deliveries are refused (401), and a delivery's
    #: signature is remembered this long to refuse replays (see docs/security.md).
    webhook_tolerance_seconds: int = Field(default=300, ge=1, le=86_400)
    #: Runs ended more than this many days ago are purged by the scheduler (off when unset).
    retention_days: int | None = Field(default=None, ge=1)
    #: At most about this many runs (whole trees) and outside events per purge batch.
    retention_batch_size: int = Field(default=100, ge=1, le=10_000)
    #: Seconds between the scheduler's purge batches.
    retention_interval: float = Field(default=60.0, gt=0)
    #: Seconds between ``treadle beat``'s reads of the schedules: a schedule created,
    #: changed, paused or declared by a newly published workflow is seen within this long.
    beat_reload_seconds: float = Field(default=1.0, gt=0, le=5)
    #: A fire beat reaches more than this many seconds after it was due was missed (beat
    #: was down or stalled): the schedule's missed-fire policy decides whether it starts.
    schedule_late_after_seconds: float = Field(default=60.0, gt=0)
    #: Fires kept per schedule: ``treadle beat`` deletes older settled ones now and then
    #: (unset: every fire is kept until its schedule is deleted).
    schedule_fires_kept: int | None = Field(default=None, ge=10)
    #: ``auto``: the scheduler and beat upgrade an older schema at start (one machine);
    #: ``wait``: they never do, but log why and wait for ``treadle db upgrade``; ``refuse``:
    #: they exit at once (docs/deployment.md#schema-upgrades).
    schema_upgrade: SchemaUpgrade = SchemaUpgrade.AUTO
    #: With ``wait``: seconds before a service gives up waiting (exit 1); unset: forever.
    schema_wait_seconds: float | None = Field(default=None, gt=0)
    #: The folder of the services' heartbeat files, read by ``treadle health`` (unset:
    #: ``treadle-health`` in the temporary folder, ``/tmp/treadle-health``).
    health_dir: str | None = None
    #: Seconds without progress after which ``treadle health`` calls a service unhealthy;
    #: the services write their heartbeat every ``min(5, this / 4)`` seconds.
    health_stale_seconds: float = Field(default=60.0, gt=0, le=86_400)
    #: Fernet key(s) encrypting secrets, comma-separated: the first encrypts, all decrypt
    #: (see docs/security.md). Unset on SQLite: a key file beside the database is used.
    secret_key: SecretStr | None = None
    #: Where ``treadle api`` answers, for ``treadle.ApiClient`` and the commands' ``--api``.
    api_url: str | None = None
    #: The API token they send (``treadle tokens create``); never printed nor logged.
    api_token: SecretStr | None = None
    #: The plan sandbox's policies (docs/governance.md): a JSON object, or the path of a
    #: JSON or YAML file, ``{"aos"?, "workflows"?, "workspaces"?}``. Unset: AOS plans are
    #: checked under the default AOS policy and no other workflow is.
    sandbox_policy: str | None = None
    #: Budget ceilings (docs/governance.md#budgets): JSON, or the path of a JSON file,
    #: ``{"all"?: {budget}, "workspaces"?: {"<name>": {budget}}}``: every run of a
    #: workspace gets at most these limits (and them when it declares none). Unset: none.
    budget_limits: str | None = None
    #: The key(s) golden records are signed with (HMAC-SHA256), comma-separated: the first
    #: signs, every one verifies; at least 16 characters each. Unset: nothing is signed
    #: (docs/determinism.md).
    golden_key: SecretStr | None = None
    #: A reason: while set, a global emergency stop holds with it whatever the database says
    #: (a scheduler sets it, and ``off`` is refused where it is set); unset it and run
    #: ``treadle emergency-stop off`` to lift it (docs/governance.md#emergency-stop).
    emergency_stop: str | None = Field(default=None, min_length=1, max_length=1000)
    #: Write a CloudEvent with every change of a run, step or definition and publish it
    #: (docs/lifecycle-events.md). Off: saving a decision does no extra work at all. Set it
    #: wherever runs change: schedulers, beat, the API, and the clients and commands.
    lifecycle_events: bool = False
    #: Send ``NOTIFY treadle_run_changes`` with every save of runs on PostgreSQL, which
    #: keeps the web UI's run pages live at once (docs/ui.md). PostgreSQL commits notifying
    #: transactions one at a time: with several schedulers at full speed, turning it off
    #: gives commits back their concurrency, and the pages look every 0.5 s instead.
    run_change_notices: bool = True
    #: Run a scheduler step's statements as server-side prepared statements on PostgreSQL
    #: (parsed once per connection instead of at every step; docs/scaling.md). Set false
    #: behind a pooler that shares sessions between clients (PgBouncer in transaction
    #: mode), where a statement prepared in one session is missing in the next.
    prepared_statements: bool = True
    #: The topic exchange the schedulers publish them to ('' : none, only the sinks).
    lifecycle_exchange: str = "treadle.events"
    #: Webhook sinks, as JSON: ``[{"name", "url", "secret", "types"?, "timeout_seconds"?}]``.
    lifecycle_sinks: EventSinks = ()
    #: Attempts at delivering an event to a sink before it is kept as failed.
    lifecycle_delivery_attempts: int = Field(default=8, ge=1, le=100)
    #: Seconds before a failed delivery's first retry; each next one waits twice as long
    #: (at most an hour).
    lifecycle_retry_seconds: float = Field(default=10.0, gt=0, le=3600)

    def budget_ceilings(self) -> BudgetCeilings:
        """The ceilings ``budget_limits`` gives (a ConfigurationError naming the variable
        when it is wrong)."""
        return ceilings_from_setting(self.budget_limits)

    def sandbox_policies(self) -> SandboxPolicies:
        """The policies ``sandbox_policy`` gives (read once per process; a
        ConfigurationError naming the variable when it is wrong)."""
        return policies_from_setting(self.sandbox_policy)


def settings_from_environment() -> Settings:
    """The settings the ``TREADLE_*`` variables give; :class:`ConfigurationError` naming
    each variable that is wrong, and why."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"TREADLE_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def os_login() -> str:
    """The login this process runs as (``unknown`` where the uid has no name, as in some
    containers): who started runs or published definitions, when nobody else is named."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
