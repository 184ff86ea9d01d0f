"""A worker's Prometheus endpoint (``treadle worker --metrics-port``).

The solo and threads pools count in the worker's one process: a plain registry serves
them. The prefork pool counts in its pool processes, which the HTTP server cannot see, so
there every process counts into prometheus-client's multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``; one memory-mapped file per process and kind) and the main
process serves what :class:`~prometheus_client.multiprocess.MultiProcessCollector` reads
from it:

* the directory is a fresh temporary one per worker start, removed at exit, unless the
  environment names one already (then it is used as it is, and left in place: empty it
  between starts, as prometheus-client asks);
* counters and the runtime histogram of every process add up, including pool processes
  that have exited (a counter does not go down when its process goes);
* ``celery_worker_tasks_active`` is a ``livesum`` gauge: the sum over live processes. A
  pool process that exits cleanly removes its gauge file (``worker_process_shutdown``);
  one killed (a hard time limit, SIGKILL, the OOM killer) cannot, so each scrape first
  drops the gauge files of processes that no longer exist.

The server is started before the pool forks: a port already in use fails the start, and
the pool processes inherit the listening socket without ever accepting on it.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.registry import Collector

from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource

logger = logging.getLogger("treadle.worker")

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How ``celery_worker_tasks_active`` adds up over the prefork pool's processes.
ACTIVE_GAUGE_MODE = "livesum"


@dataclass
class MetricsEndpoint:
    """The worker's metrics, and the HTTP server exporting them; :meth:`close` stops it
    (and removes the multiprocess directory the endpoint made)."""

    metrics: Metrics
    registry: CollectorRegistry
    address: tuple[str, int]
    directory: str | None = None
    _owned_directory: bool = False
    _server: Any = None
    _thread: threading.Thread | None = None
    _restore: list[Any] = field(default_factory=list)
    _owner: int = field(default_factory=os.getpid)

    @classmethod
    def start(cls, port: int, address: str, *, multiprocess: bool) -> MetricsEndpoint:
        """Build the metrics and serve them on ``address:port`` (OSError: cannot listen)."""
        endpoint = cls._multiprocess() if multiprocess else cls._single()
        try:
            server, thread = start_http_server(port, address, registry=endpoint.registry)
        except BaseException:
            endpoint.close()
            raise
        endpoint._server, endpoint._thread = server, thread
        endpoint.address = (address, int(server.server_address[1]))
        return endpoint

    @classmethod
    def _single(cls) -> MetricsEndpoint:
        metrics = Metrics([MetricSource.WORKER])
        return cls(metrics, metrics.registry, ("", 0))

    @classmethod
    def _multiprocess(cls) -> MetricsEndpoint:
        from celery import signals
        from prometheus_client import values
        from prometheus_client.multiprocess import MultiProcessCollector

        given = os.environ.get(ENV)
        directory = given or tempfile.mkdtemp(prefix="treadle-worker-metrics-")
        os.makedirs(directory, exist_ok=True)
        os.environ[ENV] = directory  # pool processes inherit it
        previous = values.ValueClass
        # prometheus-client picks its value class when imported: without ENV, then
        if not getattr(previous, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        metrics = Metrics([MetricSource.WORKER], multiprocess_mode=ACTIVE_GAUGE_MODE)
        collector = MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]
        registry = CollectorRegistry()
        registry.register(LiveProcessesFirst(directory, collector))
        endpoint = cls(metrics, registry, ("", 0), directory, _owned_directory=given is None)
        endpoint._restore.append(lambda: setattr(values, "ValueClass", previous))

        def on_pool_process_exit(pid: int | None = None, **_: Any) -> None:
            if pid is not None:  # in the exiting pool process itself
                mark_dead(pid, directory)

        uid = f"treadle-metrics-{id(endpoint)}"
        signals.worker_process_shutdown.connect(on_pool_process_exit, weak=False, dispatch_uid=uid)
        endpoint._restore.append(
            lambda: signals.worker_process_shutdown.disconnect(
                on_pool_process_exit, dispatch_uid=uid
            )
        )
        return endpoint

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/metrics"

    def close(self) -> None:
        if os.getpid() != self._owner:  # a forked pool process: the endpoint is not its own
            return
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for undo in reversed(self._restore):
            undo()
        self._restore.clear()
        if self._owned_directory and self.directory is not None:
            if os.environ.get(ENV) == self.directory:
                del os.environ[ENV]
            shutil.rmtree(self.directory, ignore_errors=True)
            self._owned_directory = False


class LiveProcessesFirst(Collector):
    """Collects ``inner`` after dropping the live-gauge files of processes that are gone."""

    def __init__(self, directory: str, inner: Collector) -> None:
        self.directory = directory
        self.inner = inner

    def collect(self) -> Iterable[Any]:
        for pid in live_gauge_pids(self.directory):
            if not process_exists(pid):
                mark_dead(pid, self.directory)
        return self.inner.collect()


def live_gauge_pids(directory: str) -> set[int]:
    """The processes with live-gauge files (``gauge_live<mode>_<pid>.db``) in ``directory``."""
    pids: set[int] = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        tail = os.path.basename(path)[: -len(".db")].rsplit("_", 1)[-1]
        if tail.isdigit():
            pids.add(int(tail))
    return pids


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def mark_dead(pid: int, directory: str) -> None:
    from prometheus_client import multiprocess

    with suppress(FileNotFoundError):  # removed meanwhile (a sweep, or the process itself)
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
