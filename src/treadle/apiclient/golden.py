"""The golden-record and replay calls of :class:`~treadle.apiclient.ApiClient`.

What ``treadle golden verify`` and ``treadle replay`` do, done by the server (``POST
/api/v1/golden/verify``, ``/golden/replay``, ``/runs/{id}/replay``; ``docs/api.md``): the
server's ``TREADLE_GOLDEN_KEY`` checks the signature, and the server counts each verdict
and divergence in its ``/metrics``. Answered as the API sends them, which is what the
commands print. They need an operator's token.
"""

from __future__ import annotations

from typing import Any

from treadle.apiclient.http import HttpSession, segment

__all__ = ["JSONL", "GoldenCalls"]

#: The content type golden records are sent as.
JSONL = "application/jsonl"


class GoldenCalls:
    """Golden records and replays over HTTP (a part of :class:`ApiClient`)."""

    _http: HttpSession

    def verify_golden(
        self, record: bytes, signature: str, *, name: str | None = None
    ) -> dict[str, Any]:
        """Verify a golden record (its bytes) against its signature (the ``.sig`` file's
        line) with the server's ``TREADLE_GOLDEN_KEY``, then replay it: ``{record, result,
        message, differences, signature}``, ``result`` one of ``ok``, ``mismatch``,
        ``bad_signature``. ``name`` is what the messages call the record (its file name).
        ParameterError for a record that is not one; ConflictError when the server has no
        key."""
        headers = {"Content-Type": JSONL, "Golden-Signature": signature.strip()}
        answer: dict[str, Any] = self._http.json(
            "POST", "/golden/verify", params=_named(name), content=record, headers=headers
        )
        return answer

    def replay_run(self, run_id: str, workflow: str, version: int | None = None) -> dict[str, Any]:
        """Replay the run ``run_id`` against ``workflow`` at ``version`` (the latest when
        None): ``{run, recorded, against, identical, divergences, causes, steps}``.
        NotFound for an unknown run, workflow or version."""
        params = _against(workflow, version)
        path = f"/runs/{segment(run_id)}/replay"
        answer: dict[str, Any] = self._http.json("POST", path, params=params)
        return answer

    def replay_golden(
        self, record: bytes, workflow: str, version: int | None = None, *, name: str | None = None
    ) -> dict[str, Any]:
        """:meth:`replay_run` for the run a golden record (its bytes) holds; its signature
        is not checked (:meth:`verify_golden` does that). ParameterError for a record that
        is not one."""
        params = {**_against(workflow, version), **_named(name)}
        headers = {"Content-Type": JSONL}
        answer: dict[str, Any] = self._http.json(
            "POST", "/golden/replay", params=params, content=record, headers=headers
        )
        return answer


def _named(name: str | None) -> dict[str, str | int]:
    return {"name": name} if name else {}


def _against(workflow: str, version: int | None) -> dict[str, str | int]:
    params: dict[str, str | int] = {"workflow": workflow}
    if version is not None:
        params["version"] = version
    return params
