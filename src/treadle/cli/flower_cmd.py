"""``treadle flower``: Flower, Celery's web monitor, watching Treadle's workers.

Operators already know Flower; this command starts it on the same Celery app the workers
run (:func:`treadle.worker.app.create_worker_app` from the ``TREADLE_*`` settings: broker,
queues, the real ``treadle.run.*`` task names), so no ``celery -A`` module path nor a second
copy of the Celery configuration is needed. The Celery task id of a task is the Treadle
attempt id, and its arguments show the action and the attempt, never the input.

Workers send no task events unless asked (``TREADLE_WORKER_SEND_TASK_EVENTS=false``, the
default): Flower asks them every 5 s with Celery's ``enable_events`` broadcast (its
``enable_events`` option, on here unless ``--no-enable-events``), and Treadle's workers
answer it like any Celery worker. Tasks that ran before that are not in Flower.

Safe by default: it listens on 127.0.0.1 unless ``--address`` says otherwise; exposed, it
must sit behind authentication (``--basic-auth`` or a proxy). The broker URL, with its
password, is read from the environment as every Treadle process reads it: it is never put
on Flower's command line, and it is logged with the password masked. Flower's own
``FLOWER_*`` environment variables apply (``FLOWER_BASIC_AUTH`` keeps credentials out of
the process list); no ``flowerconfig.py`` is read. Flower is an extra: without it the
command exits 2 naming ``treadle[flower]``.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import Annotated, Any

import typer

from treadle.cli.scheduler_cmd import configure_logging
from treadle.cli.support import ExitCode, fail, load_settings

log = logging.getLogger("treadle.flower")

#: What ``treadle flower`` says when Flower is not installed.
NOT_INSTALLED = (
    "Flower is not installed: install Treadle's flower extra, "
    "for example `pip install 'treadle[flower]'`"
)
DEFAULT_PORT = 5555
DEFAULT_ADDRESS = "127.0.0.1"


def register(app: typer.Typer) -> None:
    app.command("flower")(flower)


def flower(
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            help=f"Port to listen on (default {DEFAULT_PORT}, or FLOWER_PORT); 0 picks a "
            "free one, logged at start.",
            show_default=False,
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help=f"Address to listen on (default {DEFAULT_ADDRESS}, or FLOWER_ADDRESS). "
            "Anything reachable from other machines must be behind authentication.",
            show_default=False,
        ),
    ] = None,
    url_prefix: Annotated[
        str | None,
        typer.Option(
            "--url-prefix",
            help="Serve under this path, e.g. flower for http://host:5555/flower/ "
            "(behind a reverse proxy).",
            show_default=False,
        ),
    ] = None,
    basic_auth: Annotated[
        list[str] | None,
        typer.Option(
            "--basic-auth",
            help="user:password allowed in, by HTTP basic authentication (repeatable). "
            "FLOWER_BASIC_AUTH=user:pw,user2:pw2 keeps it out of the process list.",
            show_default=False,
        ),
    ] = None,
    broker_api: Annotated[
        str | None,
        typer.Option(
            "--broker-api",
            help="RabbitMQ management API, e.g. http://rabbit:15672/api/, for queue "
            "lengths (optional; without credentials in it, the broker URL's are used).",
            show_default=False,
        ),
    ] = None,
    enable_events: Annotated[
        bool | None,
        typer.Option(
            "--enable-events/--no-enable-events",
            help="Ask the workers every 5 s to send task events (default: on, or "
            "FLOWER_ENABLE_EVENTS). Treadle's workers send none unless asked, so without it "
            "Flower lists no task.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run Flower on Treadle's Celery app and broker: workers, tasks and their states."""
    try:
        # Flower ships no type information (and pyproject's mypy overrides are not ours).
        from flower import command as flower_command  # type: ignore[import-untyped]
        from flower.app import Flower  # type: ignore[import-untyped]
        from flower.options import default_options  # type: ignore[import-untyped]
        from flower.urls import settings as flower_settings  # type: ignore[import-untyped]
    except ImportError:
        fail(NOT_INSTALLED)

    from treadle.worker.app import create_worker_app

    settings = load_settings()
    configure_logging(settings.log_level)
    options: Any = default_options
    try:
        flower_command.apply_env_options()  # FLOWER_* variables, as `celery flower` reads them
    except (KeyError, ValueError) as exc:
        fail(f"invalid FLOWER_* environment variable: {exc}")
    chosen: dict[str, Any] = {
        "port": port if port is not None else _from_env(options, "port", DEFAULT_PORT),
        "address": address if address is not None else _from_env(options, "address", ""),
        "url_prefix": url_prefix,
        "basic_auth": basic_auth,
        "broker_api": broker_api,
        "enable_events": enable_events,
    }
    if not chosen["address"]:
        chosen["address"] = DEFAULT_ADDRESS  # Flower's own default is every interface
    for name, value in chosen.items():
        if value is not None:
            setattr(options, name, value)
    _check(options)
    flower_command.extract_settings()  # SSL, cookie and prefix settings; validates --broker-api
    flower_command.setup_logging()

    capp = create_worker_app(settings)  # the workers' own app: broker, queues, task names
    app = Flower(capp=capp, options=options, **flower_settings)
    try:
        bound = app.start_http_server()
    except OSError as exc:
        fail(
            f"cannot listen on {options.address}:{options.port}: {exc.strerror or exc}",
            ExitCode.FAILED,
        )
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        app.io_loop.asyncio_loop.call_soon_threadsafe(app.stop)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheme = "https" if "ssl_options" in flower_settings else "http"
    prefix = f"{options.url_prefix.strip('/')}/" if options.url_prefix else ""
    with capp.connection() as connection:
        broker = connection.as_uri()  # the password masked
    log.info(
        "flower serving %s://%s:%s/%s on broker %s (%s)",
        scheme,
        options.address,
        bound,
        prefix,
        broker,
        _authentication(options),
    )
    if not options.basic_auth and not options.auth:
        log.warning(
            "no authentication: keep Flower on a private address, or use --basic-auth; "
            "its HTTP API answers 401 unless FLOWER_UNAUTHENTICATED_API=true"
        )
    if not options.enable_events and not settings.worker_send_task_events:
        log.warning(
            "--no-enable-events and TREADLE_WORKER_SEND_TASK_EVENTS=false: workers send no "
            "task events, so Flower will list no task"
        )
    try:
        app.start()
    finally:
        app.stop()
    log.info("flower stopped (%s)", ", ".join(received) or "stop")
    raise typer.Exit(int(ExitCode.OK))


def _authentication(options: Any) -> str:
    if options.basic_auth:
        return "basic authentication"
    return "OAuth authentication" if options.auth else "no authentication"


def _from_env(options: Any, name: str, default: Any) -> Any:
    """The value ``FLOWER_<NAME>`` set (already applied to ``options``), else ``default``."""
    return getattr(options, name) if f"FLOWER_{name.upper()}" in os.environ else default


def _check(options: Any) -> None:
    """Exit 2 with a clear message for what Flower would otherwise log and exit 1 on."""
    for credential in options.basic_auth or ():
        user, sep, password = credential.partition(":")
        if not (sep and user and password):  # the value itself is not echoed: it may be a secret
            fail("--basic-auth expects user:password, and a value given is not of that form")
    if options.broker_api:
        from flower.utils.broker import validate_broker_api  # type: ignore[import-untyped]

        try:
            validate_broker_api(options.broker_api)
        except ValueError as exc:
            fail(f"--broker-api is not a management API URL: {exc}")  # it may hold a password
