"""``/healthz`` and ``/readyz``: whether the process is up, and whether it can serve.

A load balancer or an orchestrator asks these without a token. ``/healthz`` answers as
long as the process does (restart it when it stops answering). ``/readyz`` also reaches
the database (``SELECT 1``, the schema checked once) and, unless the database is SQLite
(one machine, no broker), the broker, each with a short timeout: 503 in the API's error
shape, naming what is down, while either cannot be reached (send no traffic then).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from treadle.api.context import ApiContext, Context
from treadle.api.errors import ErrorResponse, error_response
from treadle.clientlib.connection import driver_reason
from treadle.common.errors import TreadleError

__all__ = ["BROKER_TIMEOUT", "router"]

#: Seconds a readiness check waits for the broker.
BROKER_TIMEOUT = 2.0

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The process is up."""

    status: str = "ok"


class Readiness(BaseModel):
    """Everything the API needs answers."""

    status: str = "ready"
    checks: dict[str, str] = Field(description="Each dependency (database, broker) and `ok`.")


@router.get("/healthz", summary="The process is up")
def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="The database (and broker) can be reached",
    response_model=Readiness,
    responses={503: {"model": ErrorResponse, "description": "Something is down: `details`."}},
)
def readyz(context: Context) -> Readiness | JSONResponse:
    checks = {"database": _database(context)}
    if context.store.engine.dialect.name != "sqlite":
        checks["broker"] = _broker(context.settings.broker_url)
    down = {name: why for name, why in checks.items() if why != "ok"}
    if down:
        message = "not ready: " + "; ".join(f"{name}: {why}" for name, why in down.items())
        return error_response(503, "service_unavailable", message, details=checks)
    return Readiness(checks=checks)


def _database(context: ApiContext) -> str:
    try:
        with context.reaching(), context.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except TreadleError as exc:  # unreachable (ServiceUnavailable) or not Treadle's schema
        return str(exc)
    except Exception as exc:  # any other driver failure is "down" too, with its reason
        return driver_reason(exc)
    return "ok"


def _broker(url: str) -> str:
    from kombu.connection import Connection

    connection = Connection(url, connect_timeout=BROKER_TIMEOUT)
    try:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT
        )
    except Exception as exc:  # kombu raises the transport's own errors
        return f"the broker at {connection.as_uri()} is unavailable: {driver_reason(exc)}"
    finally:
        connection.release()
    return "ok"
