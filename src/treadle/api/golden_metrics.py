"""What the golden and replay routes count, in the API process's registry (``/metrics``).

``treadle_golden_verifications_total{result}`` counts each verification that reached a
verdict (``ok``, ``mismatch``, ``bad_signature``); ``treadle_replay_divergences_total
{cause}`` counts each replay that diverged, once per distinct cause among its
divergences (:class:`~treadle.scheduler.version_replay.Cause`). A request refused
before a verdict (a bad upload, an unknown run or version) counts in neither.

Every label value starts at 0 when the app is built, so the first verification that
fails is an *increase* Prometheus sees: a series that appears at 1 has no earlier sample,
and the alert rules' ``increase(...[30m]) > 0`` would miss it.
"""

from __future__ import annotations

from prometheus_client import Counter

from treadle.common.metrics import Metrics
from treadle.scheduler.service.golden import VerificationResult
from treadle.scheduler.version_replay import Cause, ReplayReport

__all__ = ["ProofMetrics"]


class ProofMetrics:
    """The two counters of one registry, every label value present from the start."""

    def __init__(self, metrics: Metrics) -> None:
        self._verifications: Counter = metrics.counter("treadle_golden_verifications")
        self._divergences: Counter = metrics.counter("treadle_replay_divergences")
        for result in VerificationResult:
            self._verifications.labels(result=result.value)
        for cause in Cause:
            self._divergences.labels(cause=cause.value)

    def verified(self, result: VerificationResult) -> None:
        self._verifications.labels(result=result.value).inc()

    def replayed(self, report: ReplayReport) -> None:
        for cause in report.causes:
            self._divergences.labels(cause=cause.value).inc()
