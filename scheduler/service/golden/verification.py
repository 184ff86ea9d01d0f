"""Verifying a golden record from start to end: its signature, then its replay.

``treadle golden verify`` (on a file) and the API's ``POST /api/v1/golden/verify`` (on an
upload) answer the same :class:`Verification`, so a record gets the same verdict and the
same words wherever it is checked. The order is the command's: the signature first (a
record whose bytes are not the ones signed is ``bad_signature`` and nothing of it is read
or replayed), then the record is read (:class:`~.document.GoldenFormatError` when it is
not one) and replayed (:func:`~.verify.replay_record`): ``mismatch`` with every
difference, else ``ok``. ``result`` is the label ``treadle_golden_verifications_total``
counts under. No I/O: the caller reads the file or the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from treadle.scheduler.service.golden.document import read_golden
from treadle.scheduler.service.golden.signature import (
    GoldenKeys,
    SignatureCheck,
    signature_problem,
)
from treadle.scheduler.service.golden.verify import replay_record

__all__ = ["Verification", "VerificationResult", "verify_golden"]


class VerificationResult(StrEnum):
    """How a verification ended."""

    OK = "ok"  # the signature holds (or was not asked for) and the record replays exactly
    MISMATCH = "mismatch"  # the replay differs from the record
    BAD_SIGNATURE = "bad_signature"  # missing, unreadable, another key's, or not these bytes'


@dataclass(frozen=True)
class Verification:
    """The verdict on one record: ``message`` is the line that says it (``verified:
    ...``, ``mismatch: ...``, ``bad signature: ...``), ``differences`` each line and field
    the replay does not reproduce, ``signature`` what checking it found (None: not
    checked, an unsigned record)."""

    record: str
    result: VerificationResult
    message: str
    differences: tuple[str, ...] = ()
    signature: SignatureCheck | None = None

    @property
    def ok(self) -> bool:
        return self.result is VerificationResult.OK

    def as_json(self) -> dict[str, Any]:
        """The verdict as the API answers it and ``--api`` reads it back."""
        signature = None
        if self.signature is not None:
            signature = {"result": self.signature.result.value, "key_id": self.signature.key_id}
        return {
            "record": self.record,
            "result": self.result.value,
            "message": self.message,
            "differences": list(self.differences),
            "signature": signature,
        }


def verify_golden(
    data: bytes,
    record: str,
    keys: GoldenKeys | None,
    signature: str | None,
    *,
    signature_name: str,
) -> Verification:
    """Verify the record ``data`` (named ``record`` in messages) against ``signature`` (the
    ``.sig`` text, None when there is none, named ``signature_name``) with ``keys``; with
    ``keys`` None the signature is not checked (``--unsigned``).

    :class:`~.document.GoldenFormatError` when the signature holds but ``data`` is not a
    golden record, or one that cannot be replayed.
    """
    check = None
    signed = ""
    if keys is not None:
        check = keys.check(data, signature)
        if not check.ok:
            problem = signature_problem(check, record, signature_name, keys.key_ids)
            return Verification(
                record, VerificationResult.BAD_SIGNATURE, f"bad signature: {problem}", (), check
            )
        signed = f"signature ok (key {check.key_id}); "
    parsed = read_golden(data, record)
    problems = tuple(replay_record(parsed))
    if problems:
        message = f"mismatch: {len(problems)} difference(s) between {record} and its replay"
        return Verification(record, VerificationResult.MISMATCH, message, problems, check)
    events = sum(1 for _ in parsed.of_kind("event"))
    steps = sum(1 for _ in parsed.of_kind("step"))
    message = (
        f"verified: {signed}{events} events replay to the recorded decisions; "
        f"{steps} steps and the run's end match"
    )
    return Verification(record, VerificationResult.OK, message, (), check)
