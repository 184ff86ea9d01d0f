"""OpenTelemetry traces of the services: the one place that imports ``opentelemetry``.

The ``otel`` extra (``pip install 'treadle[otel]'``) brings the SDK and the OTLP/HTTP
exporter. :func:`start_tracing`, called by ``treadle scheduler``, ``worker``, ``beat``
and ``api`` at start, reads ``TREADLE_TRACE_*``: with the exporter ``none`` (the
default) it returns at once and nothing of OpenTelemetry is imported; otherwise it builds
the process's tracer provider (:mod:`treadle.otel.provider`), installs the adapter
(:mod:`treadle.otel.adapter`) as the process's :class:`~treadle.common.tracing.Tracing`
and hooks the process's Celery signals (:mod:`treadle.otel.celery_hooks`). This module
itself imports nothing of OpenTelemetry, so importing it costs nothing.
"""

from __future__ import annotations

import importlib.util

from treadle.common.errors import ConfigurationError
from treadle.common.settings import Settings
from treadle.common.tracing import (
    NO_TRACING,
    TracedProcess,
    TraceExporter,
    Tracing,
    install_tracing,
)

__all__ = ["start_tracing"]

#: What the ``otel`` extra installs, by the module each brings.
_NEEDED = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def start_tracing(settings: Settings, process: TracedProcess) -> Tracing:
    """Install this process's tracing as the settings say and return it
    (:data:`~treadle.common.tracing.NO_TRACING` when the exporter is ``none``).
    :class:`ConfigurationError` for a missing extra, a missing or unwritable file."""
    exporter = TraceExporter(settings.trace_exporter)
    if exporter is TraceExporter.NONE:
        return NO_TRACING
    missing = [name for name in _NEEDED if not _importable(name)]
    if missing:
        raise ConfigurationError(
            f"TREADLE_TRACE_EXPORTER={exporter.value} needs the otel extra "
            f"(pip install 'treadle[otel]'): {', '.join(missing)} cannot be imported"
        )
    from treadle.otel.celery_hooks import hook_celery
    from treadle.otel.provider import build_tracing

    tracing = build_tracing(settings, process, set_global=True)
    hook_celery(tracing, process)
    install_tracing(tracing)
    return tracing


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
