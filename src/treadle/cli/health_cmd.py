"""``treadle health scheduler|worker|beat|api``: is that service healthy here? Exit 0 or 1.

What every container health check and Kubernetes probe runs (docs/deployment.md#health).
The scheduler, a worker and beat are judged from the heartbeat file their own loop
writes (:mod:`treadle.common.heartbeat`, judged by :mod:`treadle.common.health`): no
network, no database load, nothing but a small file read. The API is asked over HTTP:
``GET <url>/readyz`` (its database, and its broker unless on SQLite, within a timeout).
Healthy: one line on stdout, exit 0. Not: one line on stderr saying why, exit 1. Exit 2
for invalid settings or options.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.cli.support import ExitCode, fail, load_settings

if TYPE_CHECKING:
    import httpx

#: Where ``treadle api`` answers by default (``--host 127.0.0.1 --port 8080``).
DEFAULT_API_URL = "http://127.0.0.1:8080"


class CheckedService(StrEnum):
    """The services ``treadle health`` checks."""

    SCHEDULER = "scheduler"
    WORKER = "worker"
    BEAT = "beat"
    API = "api"


def register(app: typer.Typer) -> None:
    app.command("health")(health)


def health(
    service: Annotated[
        CheckedService,
        typer.Argument(
            metavar="SERVICE", help="The service to check: scheduler, worker, beat or api."
        ),
    ],
    stale_after: Annotated[
        float | None,
        typer.Option(
            "--stale-after",
            min=0.001,
            help="Seconds without progress that make the service unhealthy (default: "
            "TREADLE_HEALTH_STALE_SECONDS, 60).",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str,
        typer.Option("--url", help="api: where `treadle api` answers."),
    ] = DEFAULT_API_URL,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="api: seconds to wait for the answer.")
    ] = 5.0,
) -> None:
    """Check that a service here is healthy (connected, consuming, making progress): exit 0,
    else exit 1 with the reason."""
    if service is CheckedService.API:
        healthy, line = _api(url.rstrip("/"), timeout)
    else:
        healthy, line = _heartbeat(service, stale_after)
    if healthy:
        typer.echo(line)
        return
    typer.echo(line, err=True)
    raise typer.Exit(int(ExitCode.FAILED))


def _heartbeat(service: CheckedService, stale_after: float | None) -> tuple[bool, str]:
    import os
    import socket
    from datetime import UTC, datetime

    from treadle.common.health import judge
    from treadle.common.heartbeat import (
        HeartbeatUnreadable,
        ServiceName,
        heartbeat_path,
        read_heartbeat,
    )

    settings = load_settings()
    name = ServiceName(service.value)
    path = heartbeat_path(settings, name)
    try:
        heartbeat = read_heartbeat(path)
    except HeartbeatUnreadable as exc:
        return False, f"{service.value}: {exc}"

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists
            return True
        return True

    verdict = judge(
        name,
        heartbeat,
        path=path,
        now=datetime.now(UTC),
        stale_after=stale_after or settings.health_stale_seconds,
        host=socket.gethostname(),
        alive=alive,
    )
    return verdict.healthy, verdict.line


def _api(url: str, timeout: float) -> tuple[bool, str]:
    import httpx

    if not url.startswith(("http://", "https://")):
        fail(f"--url {url!r}: expected an http:// or https:// URL")
    try:
        response = httpx.get(f"{url}/readyz", timeout=timeout)
    except httpx.TimeoutException:
        return False, f"api at {url} did not answer /readyz within {timeout:g} s"
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        return False, f"api is not answering at {url}: {reason} (is `treadle api` running here?)"
    if response.status_code == 200:
        return True, f"api at {url} is ready: {_checks(response)}"
    message = _message(response)
    return False, f"api at {url} is not ready ({response.status_code}): {message}"


def _checks(response: httpx.Response) -> str:
    """``database ok, broker ok`` from a readiness answer."""
    try:
        checks = response.json()["checks"]
        return ", ".join(f"{name} {state}" for name, state in checks.items())
    except (ValueError, KeyError, TypeError, AttributeError):
        return "ok"


def _message(response: httpx.Response) -> str:
    """The message of the API's error shape (``{"error": {"message": ...}}``), else the
    start of the body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return " ".join(response.text.split())[:200] or "no reason given"
