"""``--metrics-port`` and ``--metrics-address`` of ``treadle scheduler`` and ``treadle beat``.

The process's :class:`~treadle.common.metrics.Metrics` registry is served at ``/metrics``
(any path answers) by prometheus-client's HTTP server on a daemon thread: it needs no
shutdown and dies with the process. Port 0 or no port: nothing is served (and nothing
listens). A port that cannot be listened on stops the command at start (exit 1).
``treadle worker`` has its own (its prefork pool counts in several processes).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.cli.support import ExitCode, fail

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["MetricsAddress", "MetricsPort", "serve_metrics"]

MetricsPort = Annotated[
    int,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus metrics at http://ADDRESS:PORT/metrics (0: off).",
    ),
]
MetricsAddress = Annotated[
    str,
    typer.Option("--metrics-address", help="The address --metrics-port listens on."),
]


def serve_metrics(
    registry: CollectorRegistry, port: int, address: str, log: logging.Logger
) -> tuple[str, int] | None:
    """Serve ``registry`` on ``address:port`` from a daemon thread; the address it
    listens on, or None when ``port`` is 0."""
    if not port:
        return None
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        fail(f"--metrics-port: cannot listen on {address}:{port}: {exc}", ExitCode.FAILED)
    host, bound = server.server_address[:2]
    log.info("serving metrics on http://%s:%d/metrics", host, bound)
    return str(host), int(bound)
