"""One schema for every log line the services write, as JSON, logfmt or readable text.

Pure formatting: :class:`LogFormatter` turns a :class:`logging.LogRecord` into one line;
the CLI (``treadle.cli.log_setup``) installs it on stderr. Each line has, in this order:

``time`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (``workflow.start``, ...),
``message``, ``run``, ``workflow``, ``task``, ``attempt``, ``trace_id``, then the
event's own fields (:data:`EVENT_FIELDS`: ``duration_s``, ``status``, ``error``, ...) and
``exception`` (a traceback). A field without a value is left out; ``time``, ``level``,
``logger`` and ``message`` are always there.

Fields come from the record's attributes (``log.info(..., extra={"run": ...})``), else
from the log context of the code running (:func:`log_context`: a worker's attempt).
Secret values never reach a line: a record may carry ``secrets`` (the texts to blank out,
longest first, as :func:`treadle.common.redaction.secret_values_of` gives them), which
are replaced by ``***`` in the message and every field; secret references are masked in
every line. Inputs, parameters and results are never logged by Treadle's services.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from treadle.common.redaction import REDACTED, redact
from treadle.common.secret_refs import MARKER, mask_references
from treadle.common.trace_ids import trace_id_of


class LogFormat(StrEnum):
    """``TREADLE_LOG_FORMAT``: how the services write their log lines."""

    JSON = "json"
    LOGFMT = "logfmt"
    TEXT = "text"
    #: text when stderr is a terminal, JSON otherwise.
    AUTO = "auto"


#: The fields every line may carry (besides ``time``, ``level``, ``logger``, ``event``
#: and ``message``): which run, task and attempt it is about, and the run's trace.
CONTEXT_FIELDS: Final = ("run", "workflow", "task", "attempt", "trace_id")
#: The fields of the run events, in the order they are written.
EVENT_FIELDS: Final = (
    "version",
    "parent_run",
    "execution",
    "item",
    "items",
    "action",
    "queue",
    "attempt_id",
    "next_attempt",
    "delay_s",
    "status",
    "duration_s",
    "vars",
    "error_type",
    "error",
)
#: Every key a line may have, in order.
SCHEMA: Final = (
    "time",
    "level",
    "logger",
    "event",
    "message",
    *CONTEXT_FIELDS,
    *EVENT_FIELDS,
    "exception",
)

_CONTEXT: ContextVar[Mapping[str, Any] | None] = ContextVar("treadle_log_context", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Lines logged inside (this thread or task) carry ``fields`` unless they name their
    own; a ``run`` without a ``trace_id`` gets the run's (:func:`trace_id_of`)."""
    if "run" in fields and "trace_id" not in fields and fields["run"]:
        fields["trace_id"] = trace_id_of(str(fields["run"]))
    outer = _CONTEXT.get()
    token = _CONTEXT.set({**outer, **fields} if outer else fields)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The line's fields, in :data:`SCHEMA` order, secrets blanked out, empty ones left out."""
    context = _CONTEXT.get() or {}
    secrets: Sequence[str] = getattr(record, "secrets", None) or ()
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    event = getattr(record, "event", None)
    if event:
        fields["event"] = event
    fields["message"] = _clean(record.getMessage(), secrets)
    for key in (*CONTEXT_FIELDS, *EVENT_FIELDS):
        value = getattr(record, key, None)
        if value is None:
            value = context.get(key)
        if value is None and key == "trace_id" and "run" in fields:
            value = trace_id_of(str(fields["run"]))
        if value is None or value in ("", ()):
            continue
        fields[key] = _clean(value, secrets)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        fields["exception"] = _clean(record.exc_text, secrets)
    return fields


def _clean(value: Any, secrets: Sequence[str]) -> Any:
    if secrets:
        return redact(value, secrets)
    if isinstance(value, str) and MARKER in value:
        return mask_references(value, REDACTED)
    return value


class LogFormatter(logging.Formatter):
    """Formats records as JSON lines, logfmt lines or readable text (:class:`LogFormat`;
    ``AUTO`` must be resolved before, see ``treadle.cli.log_setup``)."""

    def __init__(self, form: LogFormat) -> None:
        super().__init__()
        if form is LogFormat.AUTO:
            raise ValueError("resolve LogFormat.AUTO to json or text first")
        self.form = form

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        if self.form is LogFormat.JSON:
            return json_line(fields)
        if self.form is LogFormat.LOGFMT:
            return logfmt_line(fields)
        return text_line(fields)


def json_line(fields: Mapping[str, Any]) -> str:
    """One JSON object on one line (non-ASCII kept; values that are not JSON as text)."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=str)


_BARE: Final = re.compile(r"[^\s\"=\\]+")


def logfmt_value(value: Any) -> str:
    """A logfmt value: bare when it can be, else quoted with ``"`` and ``\\`` escaped;
    lists and mappings as compact JSON."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple | dict):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        text = str(value)
    if text and _BARE.fullmatch(text):
        return text
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def logfmt_line(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={logfmt_value(value)}" for key, value in fields.items())


def text_line(fields: Mapping[str, Any]) -> str:
    """``time LEVEL logger: [event] message key=value ...``, a traceback on the next lines."""
    head = f"{fields['time']} {str(fields['level']).upper()} {fields['logger']}:"
    event = fields.get("event")
    parts = [head, f"[{event}]" if event else "", str(fields["message"])]
    rest = [
        f"{key}={logfmt_value(value)}"
        for key, value in fields.items()
        if key not in ("time", "level", "logger", "event", "message", "exception")
    ]
    line = " ".join(part for part in (*parts, *rest) if part)
    exception = fields.get("exception")
    return f"{line}\n{exception}" if exception else line
