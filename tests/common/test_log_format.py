"""The log line schema: JSON, logfmt and text made from the same fields, secrets blanked.

Also the trace id (32 hex digits, the same for a run and its child runs, in every
process) and the setup the service commands use (``auto``: text on a terminal, JSON
otherwise).
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from typing import Any

import pytest

from treadle.cli.log_setup import resolved_format, setup_logging
from treadle.common.log_format import (
    SCHEMA,
    LogFormat,
    LogFormatter,
    log_context,
    record_fields,
)
from treadle.common.settings import Settings
from treadle.common.trace_ids import trace_id_of

SECRET = "s3cr3t-Value-91"
REFERENCE = "\u27e6secret:0123456789abcdef:param:token\u27e7"

_LOGFMT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def parse_logfmt(line: str) -> dict[str, str]:
    """A logfmt line as its keys and (unquoted) values; every character accounted for."""
    pairs = list(_LOGFMT_PAIR.finditer(line))
    assert " ".join(m.group(0) for m in pairs) == line, line
    return {
        m.group(1): json.loads(m.group(2)) if m.group(2).startswith('"') else m.group(2)
        for m in pairs
    }


def record(message: str = "hello %s", *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("treadle.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


EVENT = {
    "event": "workflow.task.failed",
    "run": "r-0123456789abcdef",
    "workflow": "pack.flow",
    "task": "deploy db",
    "attempt": 2,
    "execution": 3,
    "status": "failed",
    "duration_s": 1.5,
    "error_type": "ConnectionError",
    "error": f'cannot reach "db" with {SECRET}\nretrying',
    "vars": ["a", "b"],
}


def test_a_json_line_is_one_object_with_the_schemas_keys_in_order() -> None:
    line = LogFormatter(LogFormat.JSON).format(record("a %s", "b", **EVENT))
    assert "\n" not in line
    fields = json.loads(line)
    assert list(fields) == [key for key in SCHEMA if key in fields]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])
    assert fields["level"] == "warning"
    assert fields["logger"] == "treadle.test"
    assert fields["message"] == "a b"
    assert fields["trace_id"] == trace_id_of(EVENT["run"])  # added from the run
    assert {k: fields[k] for k in EVENT} == EVENT


def test_absent_fields_are_left_out() -> None:
    fields = json.loads(LogFormatter(LogFormat.JSON).format(record("plain")))
    assert list(fields) == ["time", "level", "logger", "message"]


def test_a_logfmt_line_parses_to_the_same_fields() -> None:
    made = record("a %s", "b", **EVENT)
    as_json = json.loads(LogFormatter(LogFormat.JSON).format(made))
    parsed = parse_logfmt(LogFormatter(LogFormat.LOGFMT).format(made))
    assert list(parsed) == list(as_json)
    assert parsed["error"] == as_json["error"]
    assert parsed["task"] == "deploy db"
    assert parsed["attempt"] == "2"
    assert json.loads(parsed["vars"]) == ["a", "b"]


def test_a_text_line_is_for_people() -> None:
    line = LogFormatter(LogFormat.TEXT).format(record("task failed", **EVENT))
    assert re.match(
        r"\d{4}-\S+Z WARNING treadle\.test: \[workflow\.task\.failed\] task failed run=r-", line
    )
    assert 'task="deploy db"' in line


def test_secret_values_and_references_never_reach_a_line() -> None:
    for form in (LogFormat.JSON, LogFormat.LOGFMT, LogFormat.TEXT):
        formatter = LogFormatter(form)
        with_secrets = formatter.format(
            record(f"using {SECRET}", **{**EVENT, "task": f"t {SECRET}"}, secrets=(SECRET,))
        )
        assert SECRET not in with_secrets
        assert "***" in with_secrets
        plain = formatter.format(record(f"got {REFERENCE}"))
        assert "secret:" not in plain
        assert "***" in plain


def test_an_exception_is_one_field() -> None:
    try:
        raise ValueError(f"bad {SECRET}")
    except ValueError:
        made = record("boom", secrets=(SECRET,))
        made.exc_info = sys.exc_info()
    fields = json.loads(LogFormatter(LogFormat.JSON).format(made))
    assert "ValueError: bad ***" in fields["exception"]
    assert SECRET not in json.dumps(fields)


def test_the_log_context_adds_its_fields_and_the_trace_id() -> None:
    with log_context(run="r-1.2.0.1", task="t", attempt=1):
        fields = record_fields(record("inside"))
        own = record_fields(record("own", task="other"))
    assert fields["run"] == "r-1.2.0.1"
    assert fields["trace_id"] == trace_id_of("r-1")  # a child run is in its root's trace
    assert own["task"] == "other"
    assert "run" not in record_fields(record("outside"))


def test_trace_ids_are_w3c_ids_derived_from_the_root_run() -> None:
    trace = trace_id_of("r-0123456789abcdef")
    assert re.fullmatch(r"[0-9a-f]{32}", trace)
    assert trace != "0" * 32
    assert trace_id_of("r-0123456789abcdef.4.0.1.2.0.1") == trace
    assert trace_id_of("r-fedcba9876543210") != trace


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("setting", "stream", "expected"),
    [
        ("auto", FakeTerminal(), LogFormat.TEXT),
        ("auto", io.StringIO(), LogFormat.JSON),
        ("logfmt", FakeTerminal(), LogFormat.LOGFMT),
        ("JSON", FakeTerminal(), LogFormat.JSON),
    ],
)
def test_auto_is_text_on_a_terminal_and_json_otherwise(
    setting: str, stream: io.StringIO, expected: LogFormat
) -> None:
    assert resolved_format(setting, stream) is expected


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().log_format == "auto"
    monkeypatch.setenv("TREADLE_LOG_FORMAT", "logfmt")
    assert Settings().log_format == "logfmt"


@pytest.fixture
def restored_root() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_the_service_setup_writes_one_line_a_record(restored_root: logging.Logger) -> None:
    terminal, pipe = FakeTerminal(), io.StringIO()
    setup_logging("INFO", "auto", terminal)
    logging.getLogger("treadle.x").info("on a terminal", extra={"run": "r-1"})
    setup_logging("INFO", "auto", pipe)
    logging.getLogger("treadle.x").info("in a pipe", extra={"run": "r-1"})
    logging.getLogger("treadle.x").debug("not at INFO")
    assert re.match(r"\S+Z INFO treadle\.x: on a terminal run=r-1 trace_id=", terminal.getvalue())
    [line] = pipe.getvalue().splitlines()
    assert json.loads(line)["message"] == "in a pipe"
