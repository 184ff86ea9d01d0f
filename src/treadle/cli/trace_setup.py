"""``TREADLE_TRACE_*`` at a service's start: its OpenTelemetry traces, or nothing.

``treadle scheduler``, ``worker``, ``beat`` and ``api`` call :func:`start_traces` once
their logging is set up. With ``TREADLE_TRACE_EXPORTER=none`` (the default) nothing of
OpenTelemetry is imported; a missing ``otel`` extra, a missing or unwritable
``TREADLE_TRACE_FILE`` or a bad endpoint stops the command at start (exit 2) with the
variable's name. See docs/operations.md#traces.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from treadle.cli.support import fail
from treadle.common.errors import ConfigurationError

if TYPE_CHECKING:
    from treadle.common.settings import Settings
    from treadle.common.tracing import TracedProcess

__all__ = ["start_traces"]


def start_traces(settings: Settings, process: TracedProcess, log: logging.Logger) -> None:
    """Start exporting this process's spans as the settings say (exit 2 if they cannot)."""
    if settings.trace_exporter == "none":
        return
    from treadle.otel import start_tracing

    try:
        start_tracing(settings, process)
    except ConfigurationError as exc:
        fail(str(exc))
    where = settings.trace_file if settings.trace_exporter == "file" else None
    log.info(
        "exporting traces as %s to %s",
        settings.trace_service_name or process.value,
        where or settings.trace_otlp_endpoint,
    )
