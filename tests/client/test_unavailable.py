"""A database that is down, silent or not set up: the client says so quickly, never hangs."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from treadle import Client
from treadle.common.errors import ConfigurationError, ServiceUnavailable
from treadle.common.loader import load_workflow_text
from treadle.testing import throwaway_postgres_database

pytestmark = pytest.mark.services

SPEC = load_workflow_text("ref: demo.x\ntasks:\n  - name: a\n    action: core.noop\n", "<test>")

CALLS: dict[str, Callable[[Client], Any]] = {
    "start": lambda c: c.start("demo.x"),
    "get": lambda c: c.get("r-1"),
    "wait": lambda c: c.wait("r-1", timeout=30),
    "cancel": lambda c: c.cancel("r-1"),
    "register": lambda c: c.register(SPEC),
}


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and then never answers (a hung server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_database_that_refuses_connections_is_reported_at_once(
    call: str, closed_port: int
) -> None:
    client = Client(f"postgresql+psycopg2://treadle@127.0.0.1:{closed_port}/treadle")
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        CALLS[call](client)
    assert time.monotonic() - began < 3
    message = str(caught.value)
    assert message.startswith(f"database at 127.0.0.1:{closed_port}/treadle is unavailable: ")
    assert "Connection refused" in message
    client.close()


def test_a_database_that_never_answers_times_out_after_connect_timeout(silent_port: int) -> None:
    client = Client(
        f"postgresql+psycopg2://treadle@127.0.0.1:{silent_port}/treadle", connect_timeout=2
    )
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=f"127.0.0.1:{silent_port}/treadle .*timeout"):
        client.start("demo.x")
    assert 1.5 < time.monotonic() - began < 3 + 1
    client.close()


def test_a_database_without_treadle_tables_asks_for_an_upgrade() -> None:
    with (
        throwaway_postgres_database("treadle_client") as url,
        Client(url) as client,
        pytest.raises(ConfigurationError) as caught,
    ):
        client.start("demo.x")
    message = str(caught.value)
    assert "has no Treadle tables: run `treadle db upgrade`" in message
    assert message.startswith(f"the database {url} has no")  # no password, no driver options


def test_an_unusable_url_is_a_configuration_error_at_once() -> None:
    with pytest.raises(ConfigurationError, match="unsupported database"):
        Client("mysql://db/treadle")
