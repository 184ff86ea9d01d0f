"""``treadle api``: serve the HTTP API (``docs/api.md``) with uvicorn.

The API reads ``TREADLE_DATABASE_URL`` (or ``--database``) like a client: it connects
lazily with a bounded wait, never migrates the schema (run ``treadle db upgrade`` or start
``treadle scheduler`` first) and answers 503 while the database is down, so it starts
whatever state the database is in; ``/readyz`` says when it can serve. With ``--workers``
above 1, uvicorn starts that many processes, each building its app from the ``TREADLE_*``
variables (``treadle.api.app:app_from_environment``). SIGTERM or SIGINT finishes the
requests in flight and exits 0; invalid settings exit 2.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from treadle.cli.support import fail, load_settings

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
) -> None:
    """Serve the HTTP API: runs read and controlled with bearer tokens (docs/api.md)."""
    import uvicorn

    from treadle.cli.scheduler_cmd import configure_logging
    from treadle.common.errors import ConfigurationError

    if database is not None:
        # the environment carries it to every worker process, as any other setting
        os.environ["TREADLE_DATABASE_URL"] = database
    settings = load_settings()
    configure_logging(settings.log_level)
    from treadle.api.app import create_app

    try:
        app = create_app(settings)  # a URL Treadle cannot use fails here, before serving
    except ConfigurationError as exc:
        fail(str(exc))
    level = settings.log_level.lower()
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=level)
        return
    app.state.context.store.close()  # never connected: each worker builds its own app
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=level)
