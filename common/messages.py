"""The only contract between the scheduler and the workers: what to run, and how it went.

Both messages are frozen and versioned. A worker receives a :class:`TaskDispatch` (as the
Celery task's single argument, serialised to JSON) and answers with a :class:`TaskResult`
addressed by the same ``attempt_id``; the scheduler ignores results for attempts that are
not current, so redelivered or duplicated messages are harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from treadle.common.spec import RunnerType
from treadle.common.statuses import AttemptStatus

MESSAGE_VERSION: Literal[1] = 1

#: How a worker may say an attempt ended (an attempt's terminal statuses but ``canceled``,
#: which only the scheduler decides).
REPORTED_ENDINGS = frozenset(
    {AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.TIMED_OUT}
)


class ErrorInfo(BaseModel):
    """A failure as users see it in ``task.<name>.error``: a type name and a message."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    details: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.details:
            data["details"] = self.details
        return data


class TaskDispatch(BaseModel):
    """Run one attempt of one task (or one with_items item or batch) on a worker.

    ``runner`` and ``queue`` are the action's route as pinned in the run's definition
    version: the publisher sends the message to ``queue`` (``None``: the deployment's
    default queue) as the task of ``runner``, and the worker runs it with that runner.
    Both are optional on the wire so dispatches from an older scheduler still run.

    ``secrets`` is there only when ``input`` holds secret references
    (:mod:`treadle.common.secret_refs`): each reference with the Fernet ciphertext of its
    value, which the worker decrypts with ``TREADLE_SECRET_KEY`` and puts in place just
    before the action runs. Without secrets the field is left out of the JSON, so such a
    message is exactly what an older scheduler sent.

    ``idempotency_key`` is there only for an action that declares ``side_effects: true``:
    the same for every attempt of one unit of one task execution (retries, redeliveries,
    a manual retry of the run), so the action can make its effect once (docs/packs.md).
    """

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = MESSAGE_VERSION
    attempt_id: str
    run_id: str
    task: str
    execution: int
    item_index: int | None = None
    attempt: int = Field(ge=1)
    action_ref: str
    input: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float | None = None
    runner: RunnerType | None = None
    queue: str | None = None
    secrets: dict[str, str] | None = None
    idempotency_key: str | None = None

    @model_serializer(mode="wrap")
    def _without_empty_secrets(self, serialize: SerializerFunctionWrapHandler) -> Any:
        data = serialize(self)
        if isinstance(data, dict):
            for optional in ("secrets", "idempotency_key"):
                if data.get(optional) is None:
                    data.pop(optional, None)
        return data

    def __repr_args__(self) -> Any:  # ciphertexts are not for logs either
        for name, value in super().__repr_args__():
            yield name, ("<ciphertexts>" if name == "secrets" and value else value)


class ActionOutput(BaseModel):
    """What an action wrote to stdout and stderr while it ran, as the worker kept it.

    Each stream is bounded (``TREADLE_CAPTURE_OUTPUT_BYTES``, its last bytes kept) with
    secret values blanked out; ``*_truncated`` says that earlier output was dropped.
    Text is kept storable: NUL characters and unpaired surrogates become U+FFFD and ``?``.
    """

    model_config = ConfigDict(frozen=True)

    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @field_validator("stdout", "stderr")
    @classmethod
    def _storable(cls, value: str) -> str:
        return storable_text(value)

    @property
    def empty(self) -> bool:
        return not (self.stdout or self.stderr)


def storable_text(text: str) -> str:
    """``text`` as every database stores it: no NUL, no unpaired surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


class TaskResult(BaseModel):
    """What happened to one attempt. ``result`` is set on success, ``error`` otherwise.

    ``outcome`` is one of :data:`REPORTED_ENDINGS`: the attempt row's final status.
    ``output`` is what the action printed (left out of the JSON when it printed nothing
    or capture is off, so such a message is exactly what an older worker sent; an older
    scheduler ignores it).
    """

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = MESSAGE_VERSION
    attempt_id: str
    outcome: AttemptStatus
    result: Any = None
    error: ErrorInfo | None = None
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: ActionOutput | None = None

    @field_validator("outcome")
    @classmethod
    def _reported(cls, value: AttemptStatus) -> AttemptStatus:
        if value not in REPORTED_ENDINGS:
            raise ValueError(f"a worker cannot report an attempt as {value.value!r}")
        return value

    @model_serializer(mode="wrap")
    def _without_empty_output(self, serialize: SerializerFunctionWrapHandler) -> Any:
        data = serialize(self)
        if isinstance(data, dict) and data.get("output") is None:
            data.pop("output", None)
        return data


class AttemptStarted(BaseModel):
    """A worker began an attempt: who runs it (for the reconciler) and how often it was tried.

    Sent on the results queue before the action runs. A task that keeps killing its worker
    is started again and again; the scheduler counts these notices per attempt.
    """

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = MESSAGE_VERSION
    attempt_id: str
    worker: str
    at: datetime
    #: The worker's main process id: which incarnation of the node started the attempt
    #: (a worker restarted under the same name has another). None from older workers.
    worker_pid: int | None = None


class WorkerReport(BaseModel):
    """What travels on the results queue: either a started notice or a result.

    One envelope with a ``kind`` tag keeps the queue's contract explicit and versioned.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["started", "result"]
    started: AttemptStarted | None = None
    result: TaskResult | None = None

    @classmethod
    def of(cls, message: AttemptStarted | TaskResult) -> WorkerReport:
        if isinstance(message, TaskResult):
            return cls(kind="result", result=message)
        return cls(kind="started", started=message)
