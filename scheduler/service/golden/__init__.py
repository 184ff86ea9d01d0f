"""Golden records of runs: written, signed, verified by replay, compared.

* :func:`golden_lines` / :func:`golden_bytes` (``record``): a run's record as JSON lines;
* :class:`GoldenKeys` (``signature``): the ``.sig`` file, HMAC-SHA256 with
  ``TREADLE_GOLDEN_KEY``;
* :func:`read_golden` (``document``): a file back to a :class:`GoldenRecord`, problems
  named by line and field;
* :func:`replay_record` (``verify``): replay through ``decide``, every difference named;
* :func:`verify_golden` (``verification``): the signature, then the replay: the verdict
  ``treadle golden verify`` prints and the API answers;
* :func:`compare_records` (``compare``): two records, timestamps and run ids set aside.

``treadle runs golden``, ``treadle golden verify|compare``, ``treadle replay`` and the
API's golden and replay routes use them; ``docs/determinism.md`` describes the format.
"""

from __future__ import annotations

from treadle.scheduler.service.golden.compare import compare_records
from treadle.scheduler.service.golden.document import (
    GoldenFormatError,
    GoldenLine,
    GoldenRecord,
    read_golden,
)
from treadle.scheduler.service.golden.record import (
    SCHEMA_VERSION,
    digest,
    golden_bytes,
    golden_lines,
)
from treadle.scheduler.service.golden.signature import (
    SIG_SUFFIX,
    GoldenKeys,
    SignatureCheck,
    SignatureResult,
    signature_problem,
)
from treadle.scheduler.service.golden.verification import (
    Verification,
    VerificationResult,
    verify_golden,
)
from treadle.scheduler.service.golden.verify import definition_of, replay_record, stored_run_of

__all__ = [
    "SCHEMA_VERSION",
    "SIG_SUFFIX",
    "GoldenFormatError",
    "GoldenKeys",
    "GoldenLine",
    "GoldenRecord",
    "SignatureCheck",
    "SignatureResult",
    "Verification",
    "VerificationResult",
    "compare_records",
    "definition_of",
    "digest",
    "golden_bytes",
    "golden_lines",
    "read_golden",
    "replay_record",
    "signature_problem",
    "stored_run_of",
    "verify_golden",
]
