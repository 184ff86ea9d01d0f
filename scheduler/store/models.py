"""The tables Treadle keeps, declared once for the repositories and the schema-drift test.

The repositories use SQLAlchemy Core statements on these tables (bulk ``executemany`` is what
keeps saving a large with_items execution fast); the Alembic revisions in ``migrations/``
create the same schema, and ``tests/store/test_migrations.py`` proves the two agree.
Enumerations are stored as their string values (no native database enums: adding a status
must not need a type migration).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase

from treadle.scheduler.store.coltypes import JSONValue, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Width of the columns holding an enum value (statuses, kinds).
ENUM_LEN = 32


class Base(DeclarativeBase):
    """Holds the metadata (with a naming convention, so migrations name constraints alike)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata


def _run_fk() -> ForeignKey:
    return ForeignKey("runs.id", ondelete="CASCADE")


definitions = Table(
    "definitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("dialect", String(ENUM_LEN), nullable=False),
    Column("documents", JSONValue, nullable=False),
    Column("author", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # '' for a workflow every workspace shares (pack paths, the CLI, clients); a
    # workspace's name for one created through the API in it (see migration 0012).
    Column("workspace", String, nullable=False, server_default=""),
    UniqueConstraint("workspace", "ref", "version"),
)

packs = Table(
    "packs",
    metadata,
    Column("ref", String, primary_key=True),
    Column("version", String, nullable=True),
    Column("path", String, nullable=True),
    Column("config", JSONValue, nullable=True),
    Column("registered_at", UTCDateTime, nullable=False),
)

actions = Table(
    "actions",
    metadata,
    Column("ref", String, primary_key=True),
    Column("pack_ref", String, nullable=False, index=True),
    Column("runner_type", String(ENUM_LEN), nullable=False),
    Column("entry_point", String, nullable=True),
    Column("queue", String, nullable=True),
    Column("parameters", JSONValue, nullable=True),
    Column("registered_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String, primary_key=True),
    Column("workflow", String, nullable=False),
    Column("definition_version", Integer, nullable=True),
    Column("status", String(ENUM_LEN), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("parent_run_id", String, nullable=True, index=True),
    Column("parent_attempt_id", String, nullable=True),
    Column("idempotency_key", String, nullable=True),
    Column("trigger_event_id", String, nullable=True),
    Column("context", JSONValue, nullable=True),
    Column("vars", JSONValue, nullable=True),
    Column("core", JSONValue, nullable=True),
    Column("output", JSONValue, nullable=True),
    Column("error", JSONValue, nullable=True),
    Column("created_at", UTCDateTime, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("workspace", String, nullable=False, server_default="default"),
    # The seq of the run's last ``run_events`` row: read with the run's lock, so appending
    # events needs no ``max(seq)`` query.
    Column("last_seq", Integer, nullable=False, server_default="0"),
    # Listing runs pages by (created_at, id), newest first (store/run_listing.py); the status
    # index also serves every other look-up by status.
    Index("ix_runs_status_created_at_id", "status", "created_at", "id"),
    Index("ix_runs_workflow_created_at_id", "workflow", "created_at", "id"),
    Index("ix_runs_created_at_id", "created_at", "id"),
    Index("ix_runs_workspace_created_at_id", "workspace", "created_at", "id"),
    UniqueConstraint("workspace", "idempotency_key"),
    UniqueConstraint("workspace", "trigger_event_id", "workflow"),
)

task_executions = Table(
    "task_executions",
    metadata,
    Column("run_id", String, _run_fk(), primary_key=True),
    Column("execution_id", Integer, primary_key=True),
    Column("task", String, nullable=False),
    Column("scope", Integer, nullable=False),
    Column("status", String(ENUM_LEN), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("with_items", Boolean, nullable=False),
    Column("next_unit", Integer, nullable=False),
    Column("in_flight", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("unit_count", Integer, nullable=False),
    Column("result", JSONValue, nullable=True),
    Column("error", JSONValue, nullable=True),
    Column("timer", String, nullable=True),
    Column("inquiry_id", String, nullable=True),
    Column("released_with", JSONValue, nullable=True),
    Column("waits_for", JSONValue, nullable=True),
    Column("compensates", Integer, nullable=True),
)

task_units = Table(
    "task_units",
    metadata,
    Column("run_id", String, _run_fk(), primary_key=True),
    Column("execution_id", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item_index", Integer, nullable=True),
    Column("item", JSONValue, nullable=True),
    Column("status", String(ENUM_LEN), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("result", JSONValue, nullable=True),
    Column("error", JSONValue, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("timer", String, nullable=True),
    Column("inquiry_id", String, nullable=True),
    Column("child_run_id", String, nullable=True),
    Column("result_bytes", Integer, nullable=False),
    Column("waits_for", JSONValue, nullable=True),
    Column("retry_base", Integer, nullable=False, server_default="0"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("attempt_id", String, primary_key=True),
    Column("run_id", String, _run_fk(), nullable=False, index=True),
    Column("execution_id", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("action_ref", String, nullable=False),
    Column("queue", String, nullable=True),
    Column("status", String(ENUM_LEN), nullable=False),
    Column("worker", String, nullable=True),
    Column("dispatched_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("deadline", UTCDateTime, nullable=True),
    Column("error", JSONValue, nullable=True),
    Column("reason", Text, nullable=True),
    Column("deliveries", Integer, nullable=False, server_default="0"),
    Column("worker_pid", Integer, nullable=True),
    Index("ix_attempts_status_deadline", "status", "deadline"),
)

event_waits = Table(
    "event_waits",
    metadata,
    Column("wait_id", String, primary_key=True),
    Column("run_id", String, _run_fk(), nullable=False, index=True),
    Column("event_type", String, nullable=False, index=True),
    Column("subject", String, nullable=True),
    Column("deadline", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

run_events = Table(
    "run_events",
    metadata,
    Column("run_id", String, _run_fk(), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(ENUM_LEN), nullable=False),
    Column("payload", JSONValue, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String, nullable=False, index=True),
    Column("kind", String(ENUM_LEN), nullable=False),
    Column("payload", JSONValue, nullable=True),
    Column("queue", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("publish_attempts", Integer, nullable=False),
    # Until when the scheduler that wrote the row publishes it itself (relays skip it).
    Column("held_until", UTCDateTime, nullable=True),
    # Flow control (``flow_repo.py``): a dispatch held back until a slot of ``flow_key`` (in
    # ``flow_workspace``) frees or, for a rate limit, ``flow_until``; relays skip such rows.
    # ``flow_holder`` is its attempt, ``flow_wait`` says why it waits, since ``flow_since``.
    Column("flow_workspace", String, nullable=True),
    Column("flow_key", String, nullable=True),
    Column("flow_holder", String, nullable=True),
    Column("flow_until", UTCDateTime, nullable=True),
    Column("flow_since", UTCDateTime, nullable=True),
    Column("flow_wait", Text, nullable=True),
    Column("priority", Integer, nullable=True),
    Index("ix_outbox_sent_at_id", "sent_at", "id"),
    Index(
        "ix_outbox_flow_key",
        "flow_workspace",
        "flow_key",
        postgresql_where=text("flow_key IS NOT NULL"),
        sqlite_where=text("flow_key IS NOT NULL"),
    ),
)

timers = Table(
    "timers",
    metadata,
    Column("id", String, primary_key=True),
    Column("run_id", String, _run_fk(), nullable=False, index=True),
    Column("kind", String(ENUM_LEN), nullable=False),
    Column("fire_at", UTCDateTime, nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

inquiries = Table(
    "inquiries",
    metadata,
    Column("id", String, primary_key=True),
    Column("run_id", String, _run_fk(), nullable=False, index=True),
    Column("attempt_id", String, nullable=False),
    # null for a run-level inquiry (``purpose`` budget); 0021
    Column("task", String, nullable=True),
    Column("status", String(ENUM_LEN), nullable=False, index=True),
    Column("purpose", String(ENUM_LEN), nullable=False, server_default="task"),
    Column("prompt", JSONValue, nullable=True),
    Column("schema", JSONValue, nullable=True),
    Column("assigned_to", JSONValue, nullable=True),
    Column("deadline", UTCDateTime, nullable=True),
    Column("response", JSONValue, nullable=True),
    Column("responder", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
)

#: A secret entry keeps its value encrypted in ``ciphertext`` (``value`` null); one left in
#: ``value`` from before encryption is encrypted by ``treadle secrets rotate-key``.
keystore = Table(
    "keystore",
    metadata,
    Column("workspace", String, primary_key=True, server_default="default"),
    Column("key", String, primary_key=True),
    Column("value", JSONValue, nullable=True),
    Column("secret", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ciphertext", Text, nullable=True),
)

#: The encrypted values of a run's ``secret: true`` parameters (the run holds references).
run_secrets = Table(
    "run_secrets",
    metadata,
    Column("run_id", String, _run_fk(), primary_key=True),
    Column("name", String, primary_key=True),
    Column("ciphertext", Text, nullable=False),
)

broker_incarnations = Table(
    "broker_incarnations",
    metadata,
    Column("broker", String, primary_key=True),
    Column("incarnation", String, nullable=False),
    Column("noted_at", UTCDateTime, nullable=False),
)

#: A token's name is unique in its workspace among tokens not revoked (so the audit log's
#: ``token:<name>`` names one live token), and free again once the token is revoked.
_LIVE_TOKEN = text("revoked_at IS NULL")

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("role", String(ENUM_LEN), nullable=False),
    Column("workspace", String, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Index(
        "uq_api_tokens_workspace_name_live",
        "workspace",
        "name",
        unique=True,
        sqlite_where=_LIVE_TOKEN,
        postgresql_where=_LIVE_TOKEN,
    ),
)

#: Append-only: database triggers refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL), see
#: migration 0009. Not per-run storage: the retention purge leaves it alone.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String, nullable=False),
    Column("workspace", String, nullable=False),
    Column("action", String, nullable=False),
    Column("target", String, nullable=True),
    Column("outcome", String(ENUM_LEN), nullable=False),
    Column("details", JSONValue, nullable=True),
    Index("ix_audit_log_workspace_id", "workspace", "id"),
    Index("ix_audit_log_at", "at"),
)

#: Requests per API token and minute (rate limits shared by every API process).
api_rate_windows = Table(
    "api_rate_windows",
    metadata,
    Column("token_id", String, primary_key=True),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("requests", Integer, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("workspace", String, primary_key=True, server_default="default"),
    Column("id", String, primary_key=True),
    Column("type", String, nullable=False),
    Column("subject", String, nullable=True),
    Column("data", JSONValue, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_events_type_received_at", "type", "received_at"),
)

#: Webhooks (``POST /api/v1/webhooks/<name>``): the name is the whole key, unique across
#: the installation since the URL carries nothing else. One made through the API or the CLI
#: keeps its shared secret encrypted in ``ciphertext``; one a pack declares names the
#: keystore secret entry holding it (``keystore_secret``) and its ``pack``. See migration 0013.
webhooks = Table(
    "webhooks",
    metadata,
    Column("name", String, primary_key=True),
    Column("workspace", String, nullable=False),
    Column("event_type", String, nullable=False),
    Column("ciphertext", Text, nullable=True),
    Column("keystore_secret", String, nullable=True),
    Column("pack", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String, nullable=False),
    Index("ix_webhooks_workspace_name", "workspace", "name"),
)

#: The signatures of the deliveries accepted within the timestamp tolerance: the same one
#: again is a replay. Not per run: rows whose timestamp left the tolerance are deleted as
#: deliveries arrive (a delivery that old is refused for its timestamp anyway).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("webhook", String, primary_key=True),
    Column("signature", String(64), primary_key=True),
    Column("signed_at", UTCDateTime, nullable=False, index=True),
    Column("received_at", UTCDateTime, nullable=False),
)
