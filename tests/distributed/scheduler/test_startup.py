"""Start-up with the database or the broker down: retried with backoff, each reason logged."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from treadle.common.catalog import Catalog
from treadle.common.errors import ServiceUnavailable
from treadle.scheduler.service.process import SchedulerProcess
from treadle.scheduler.service.startup import RetryPolicy

from .conftest import SettingsFactory

pytestmark = pytest.mark.services

FAST = RetryPolicy(first_wait=0.05, max_wait=0.1, give_up_after=0.6)
CLOSED_PORT = 1  # nothing listens there


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "treadle.scheduler" and "retrying in" in r.getMessage()
    ]


def test_a_database_that_is_down_at_start_is_retried_and_the_reason_logged(
    make_settings: SettingsFactory, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        database_url=f"postgresql+psycopg2://postgres@127.0.0.1:{CLOSED_PORT}/treadle"
    )
    process = SchedulerProcess(settings, catalog, startup=FAST)
    caplog.set_level(logging.INFO, logger="treadle.scheduler")
    try:
        with pytest.raises(ServiceUnavailable, match=r"database at 127\.0\.0\.1:1 unreachable"):
            process.start()
    finally:
        process.close()
    lines = retry_lines(caplog)
    assert len(lines) >= 2, caplog.text
    assert lines[0].startswith("database at 127.0.0.1:1 unreachable: ")
    assert "refused" in lines[0]
    assert lines[0].endswith("; retrying in 0.1 s") or lines[0].endswith("; retrying in 0 s")


def test_a_broker_that_is_down_at_start_is_retried_and_the_reason_logged(
    make_settings: SettingsFactory, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(broker_url=f"amqp://guest:guest@127.0.0.1:{CLOSED_PORT}//")
    process = SchedulerProcess(settings, catalog, startup=FAST)
    caplog.set_level(logging.INFO, logger="treadle.scheduler")
    try:
        with pytest.raises(ServiceUnavailable, match=r"broker at 127\.0\.0\.1:1 unreachable"):
            process.start()
    finally:
        process.close()
    lines = retry_lines(caplog)
    assert len(lines) >= 2, caplog.text
    assert lines[0].startswith("broker at 127.0.0.1:1 unreachable: ")
    assert "refused" in lines[0].lower()
    stages = [r.getMessage() for r in caplog.records]
    assert any(s.startswith("database ready") for s in stages)  # it got that far


def test_a_stop_request_ends_the_wait_for_a_service_at_once(
    make_settings: SettingsFactory, catalog: Catalog
) -> None:
    settings = make_settings(broker_url=f"amqp://guest:guest@127.0.0.1:{CLOSED_PORT}//")
    patient = RetryPolicy(first_wait=5, max_wait=5, give_up_after=None)
    process = SchedulerProcess(settings, catalog, startup=patient)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    began = time.monotonic()
    try:
        with pytest.raises(ServiceUnavailable, match="stopped while waiting for broker"):
            process.start(stop)
    finally:
        process.close()
    assert time.monotonic() - began < 4
