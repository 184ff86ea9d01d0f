"""The one way runners report a failure they understand: an error type users can branch on.

A runner raises :class:`ActionError` with a stable ``error_type`` (``CommandFailed``,
``HTTPStatusError`` ...) when it knows what went wrong; :func:`treadle.worker.execute.execute`
turns it into the attempt's :class:`~treadle.common.messages.ErrorInfo` unchanged. Anything
else an action raises is reported under its own exception class name.
"""

from __future__ import annotations

from typing import Any

from treadle.common.errors import TreadleError
from treadle.common.messages import ErrorInfo


class ActionError(TreadleError):
    """An action attempt failed for a reason the worker can name.

    ``error_type`` becomes ``task.<name>.error.type`` in templates, so it is part of the
    user-facing contract: keep the names in ``docs/packs.md`` in step with the code.
    """

    def __init__(
        self, error_type: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.details = details

    def info(self) -> ErrorInfo:
        return ErrorInfo(type=self.error_type, message=self.message, details=self.details)
