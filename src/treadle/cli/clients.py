"""The one place a command gets its client: the database, or the HTTP API with ``--api``.

Commands that read and change runs (``treadle runs list|show|pause...``, ``treadle run``,
``treadle inquiry``, ``treadle events send``, ``treadle workflows versions``, ``treadle
kv``) call :func:`command_client` and use what it yields through :class:`CommandClient`,
the calls both :class:`treadle.Client` and :class:`treadle.ApiClient` answer alike. With
``--api URL`` (default ``TREADLE_API_URL``) it is an ``ApiClient`` sending
``TREADLE_API_TOKEN`` (or ``--token``): the operator needs no database credentials, and
the output is the same. Otherwise it is a
:class:`~treadle.cli.database_client.DatabaseClient` on ``TREADLE_DATABASE_URL``.

Failures every command reports alike are reported here: the API or the database cannot be
reached, or the token's rate limit is reached (exit 1); a token refused, bad settings
(exit 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from treadle.cli.support import ExitCode, fail, identity, load_settings

if TYPE_CHECKING:
    from treadle.clientlib.versions import VersionInfo
    from treadle.clientlib.views import RunInfo
    from treadle.common.budget import Budget
    from treadle.common.statuses import InquiryStatus, RunStatus
    from treadle.scheduler.service.controls import Control
    from treadle.scheduler.service.event_outcome import EventOutcome
    from treadle.scheduler.store import RunPage

__all__ = [
    "ApiOption",
    "CommandClient",
    "TokenOption",
    "api_url",
    "command_client",
    "location",
    "upgrade_database",
]

ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        metavar="URL",
        help="Go through the HTTP API at URL (default TREADLE_API_URL) with "
        "TREADLE_API_TOKEN (or --token), instead of the database.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="With --api: the API token (default TREADLE_API_TOKEN, which keeps it out of "
        "the process list).",
        show_default=False,
    ),
]


class CommandClient(Protocol):
    """What the commands call: :class:`treadle.ApiClient` and
    :class:`~treadle.cli.database_client.DatabaseClient` both answer it."""

    def close(self) -> None: ...

    def start(
        self,
        ref: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        version: int | None = None,
        priority: int | None = None,
        seed: int | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
    ) -> str: ...

    def get(self, run_id: str, *, items: bool = False) -> RunInfo: ...

    def get_document(self, run_id: str, *, items: bool = False) -> dict[str, Any]: ...

    def items_document(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 100
    ) -> dict[str, Any]: ...

    def attempts_document(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 20
    ) -> dict[str, Any]: ...

    def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        parent: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage: ...

    def control_document(
        self,
        run_id: str,
        control: Control | str,
        reason: str | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
        *,
        task: str | None = None,
    ) -> dict[str, Any]: ...

    def versions(self, ref: str) -> list[VersionInfo]: ...

    def respond_document(self, inquiry_id: str, response: Any) -> dict[str, Any]: ...

    def inquiry(self, inquiry_id: str) -> dict[str, Any]: ...

    def inquiries(
        self, *, status: InquiryStatus | str | None = None, run: str | None = None
    ) -> list[dict[str, Any]]: ...

    def send_event(
        self,
        event_type: str,
        *,
        subject: str | None = None,
        data: Any = None,
        event_id: str | None = None,
    ) -> EventOutcome: ...

    def kv_list(self) -> list[dict[str, Any]]: ...

    def kv_get(self, key: str) -> dict[str, Any]: ...

    def kv_set(self, key: str, value: Any, *, secret: bool = False) -> dict[str, Any]: ...

    def kv_delete(self, key: str) -> None: ...


def api_url(option: str | None) -> str | None:
    """The API a command goes through: ``--api``, else ``TREADLE_API_URL``; None: the
    database."""
    return option or load_settings().api_url or None


def location(client: CommandClient) -> str:
    """Where the client's runs are, for messages: the API's URL, or the database."""
    from treadle.apiclient import ApiClient
    from treadle.cli.database_client import DatabaseClient

    if isinstance(client, ApiClient):
        return client.base_url
    assert isinstance(client, DatabaseClient)
    return client.database


@contextmanager
def command_client(
    api: str | None,
    token: str | None = None,
    *,
    prepare: Callable[[str], None] | None = None,
) -> Iterator[CommandClient]:
    """The client of a command: an :class:`~treadle.ApiClient` on ``api_url(api)``, else
    a :class:`~treadle.cli.database_client.DatabaseClient` on ``TREADLE_DATABASE_URL``
    (``prepare`` is called with its URL first: :func:`upgrade_database` brings its schema
    up to date, as the embedded commands do).

    The API or database out of reach (or the token's rate limit reached) ends the command
    with exit 1; a token the API refuses, or settings that do not work, with exit 2.
    """
    from treadle.common.errors import (
        ConfigurationError,
        Forbidden,
        ServiceUnavailable,
        TooManyRequests,
        Unauthenticated,
    )

    settings = load_settings()
    url = api or settings.api_url
    client: CommandClient
    try:
        if url:
            client = _api_client(url, token, settings.api_token)
        else:
            if prepare is not None:
                prepare(settings.database_url)
            from treadle.cli.database_client import DatabaseClient

            client = DatabaseClient(settings=settings, identity=identity())
    except ConfigurationError as exc:
        fail(str(exc))
    try:
        yield client
    except (ServiceUnavailable, TooManyRequests) as exc:
        fail(str(exc), ExitCode.FAILED)
    except (Unauthenticated, Forbidden, ConfigurationError) as exc:
        fail(str(exc))
    finally:
        client.close()


def _api_client(url: str, token: str | None, configured: Any) -> CommandClient:
    from treadle.apiclient import ApiClient

    secret = token or (configured.get_secret_value() if configured is not None else None)
    if not secret:
        fail(
            f"the API at {url} needs an API token: set TREADLE_API_TOKEN (or pass --token); "
            "`treadle tokens create` makes one"
        )
    return ApiClient(url, secret)


def upgrade_database(database_url: str) -> None:
    """Open (and so migrate) the database as the embedded mode does."""
    from treadle.common.errors import ServiceUnavailable
    from treadle.scheduler.store import Store

    try:
        Store.open(database_url).close()
    except ServiceUnavailable as exc:
        fail(str(exc), ExitCode.FAILED)
