"""prometheus-client collectors built from the catalogue, one registry per process.

Each process (``treadle scheduler``, ``worker``, ``beat``, ``api``) builds a
:class:`Metrics` for its source(s) and hands it to the parts that count; nothing is a
module-level global, so tests build their own and two in one process do not collide.
Serving the registry over HTTP is the process edges' business (``--metrics-port``, the
API's ``/metrics``). The prefork worker's children count into prometheus-client's
multiprocess directory instead (``PROMETHEUS_MULTIPROC_DIR``): :func:`multiprocess_registry`
collects them for the parent's endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from treadle.common.metrics_catalog import BY_NAME, CATALOG, MetricKind, MetricSource, MetricSpec


class Metrics:
    """The collectors of some catalogue sources, in one registry; look them up by name.

    ``counter("celery_task_sent")`` etc. raise KeyError for a metric that is not in the
    catalogue or not of these sources, so a typo fails where it is written.
    """

    def __init__(
        self,
        sources: Iterable[MetricSource],
        *,
        registry: CollectorRegistry | None = None,
        multiprocess_mode: str | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.sources = frozenset(sources)
        self._collectors: dict[str, MetricWrapperBase] = {}
        for spec in CATALOG:
            if spec.source in self.sources:
                self._collectors[spec.name] = _collector(spec, self.registry, multiprocess_mode)

    def counter(self, name: str) -> Counter:
        return cast(Counter, self._get(name, MetricKind.COUNTER))

    def gauge(self, name: str) -> Gauge:
        return cast(Gauge, self._get(name, MetricKind.GAUGE))

    def histogram(self, name: str) -> Histogram:
        return cast(Histogram, self._get(name, MetricKind.HISTOGRAM))

    def _get(self, name: str, kind: MetricKind) -> MetricWrapperBase:
        spec = BY_NAME[name]
        if spec.kind is not kind:
            raise KeyError(f"{name} is a {spec.kind.value}, not a {kind.value}")
        return self._collectors[name]


def _collector(
    spec: MetricSpec, registry: CollectorRegistry, multiprocess_mode: str | None
) -> MetricWrapperBase:
    options: dict[str, Any] = {"labelnames": spec.labels, "registry": registry}
    if spec.kind is MetricKind.COUNTER:
        return Counter(spec.name, spec.help, **options)
    if spec.kind is MetricKind.HISTOGRAM:
        if spec.buckets is not None:
            options["buckets"] = spec.buckets
        return Histogram(spec.name, spec.help, **options)
    if multiprocess_mode is not None:
        options["multiprocess_mode"] = multiprocess_mode
    return Gauge(spec.name, spec.help, **options)


def multiprocess_registry() -> CollectorRegistry:
    """A registry collecting what every process wrote to ``PROMETHEUS_MULTIPROC_DIR``."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
