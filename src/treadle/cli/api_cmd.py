"""``treadle api``: serve the HTTP API (``docs/api.md``) with uvicorn.

The API reads ``TREADLE_DATABASE_URL`` (or ``--database``) like a client: it connects
lazily with a bounded wait, never migrates the schema (run ``treadle db upgrade`` or start
``treadle scheduler`` first) and answers 503 while the database is down, so it starts
whatever state the database is in; ``/readyz`` says when it can serve. With ``--workers``
above 1, uvicorn starts that many processes, each building its app from the ``TREADLE_*``
variables (``treadle.api.app:app_from_environment``). SIGTERM or SIGINT finishes the
requests in flight and exits 0; invalid settings exit 2.

On SQLite (the default database) the process also runs the embedded scheduler and worker
pool (:class:`~treadle.embedded.background.BackgroundScheduler`, the services ``treadle
run`` uses): the database is brought up to date, the packs (the shipped ones, then
``TREADLE_PACK_PATHS``) are registered and their workflows published, and runs started or
released over HTTP run to their end in this one process. Only one process may do that,
so ``--workers`` above 1 on SQLite needs ``--no-embedded``, which serves the API alone
(runs then wait for another process, such as ``treadle run``, to move them). On
PostgreSQL the API only reads and writes: ``treadle scheduler`` and ``treadle worker`` do
the work.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.cli.support import ExitCode, fail, load_catalog, load_settings

if TYPE_CHECKING:
    from treadle.common.settings import Settings
    from treadle.embedded.background import BackgroundScheduler

#: The factory each uvicorn worker process calls.
APP_FACTORY = "treadle.api.app:app_from_environment"


def register(app: typer.Typer) -> None:
    app.command("api")(api)


def api(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes serving requests.")
    ] = 1,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="The database URL (default: TREADLE_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    no_embedded: Annotated[
        bool,
        typer.Option(
            "--no-embedded",
            help="On SQLite, serve the API only: no scheduler or worker pool in this process "
            "(needed for --workers above 1). Nothing changes on PostgreSQL.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API: runs read and controlled with bearer tokens (docs/api.md).

    On SQLite this process also runs the runs (the embedded scheduler and worker pool)."""
    import uvicorn

    from treadle.cli.scheduler_cmd import configure_logging
    from treadle.common.errors import ConfigurationError

    if database is not None:
        # the environment carries it to every worker process, as any other setting
        os.environ["TREADLE_DATABASE_URL"] = database
    settings = load_settings()
    run_here = not no_embedded and _is_sqlite(settings.database_url)
    if run_here and workers > 1:
        fail(
            f"--workers {workers}: on SQLite this process also runs the embedded scheduler "
            "and worker pool, and only one process may; use --workers 1, or --no-embedded "
            "to serve the API alone (runs then wait for another process to move them), or "
            "PostgreSQL with `treadle scheduler` and `treadle worker`"
        )
    configure_logging(settings.log_level)
    if workers == 1:  # one process (--workers N: each of uvicorn's builds its own app)
        from treadle.cli.trace_setup import start_traces
        from treadle.common.tracing import TracedProcess

        start_traces(settings, TracedProcess.API, logging.getLogger("treadle.api"))
    from treadle.api.app import create_app

    embedded = _embedded_scheduler(settings) if run_here else None
    try:
        app = create_app(settings, embedded=embedded)  # a bad URL fails here, before serving
    except ConfigurationError as exc:
        if embedded is not None:
            embedded.close()
        fail(str(exc))
    level = settings.log_level.lower()
    if workers == 1:
        try:
            # log_config=None: uvicorn's lines go through our handler (TREADLE_LOG_FORMAT)
            uvicorn.run(app, host=host, port=port, log_level=level, log_config=None)
        finally:
            if embedded is not None:
                embedded.close()  # closed by the app already, unless it never started
        return
    app.state.context.store.close()  # never connected: each worker builds its own app
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=level)


def _is_sqlite(url: str) -> bool:
    from treadle.common.errors import ConfigurationError
    from treadle.scheduler.store.engine import parse_url

    try:
        return parse_url(url).get_backend_name() == "sqlite"
    except ConfigurationError as exc:
        fail(str(exc))


def _embedded_scheduler(settings: Settings) -> BackgroundScheduler:
    """The scheduler and worker pool of this process, on the database brought up to date,
    with the server's packs registered and their workflows published."""
    from treadle.common.errors import ConfigurationError, ServiceUnavailable
    from treadle.common.settings import os_login
    from treadle.embedded.background import BackgroundScheduler

    catalog = load_catalog(settings, [])
    try:
        embedded = BackgroundScheduler(settings, catalog)
    except ConfigurationError as exc:
        fail(str(exc))
    except ServiceUnavailable as exc:
        fail(str(exc), ExitCode.FAILED)
    try:
        embedded.publish_packs(author=f"treadle api ({os_login()}@{socket.gethostname()})")
    except BaseException:
        embedded.close()
        raise
    return embedded
