"""One exception root for Treadle, with a specific subclass per kind of failure.

Callers catch :class:`TreadleError` to handle anything Treadle raises on purpose; the
subclasses let the CLI map failures to exit codes and the API to HTTP statuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from treadle.common.source import Issue


class TreadleError(Exception):
    """Root of every error Treadle raises deliberately."""


class DefinitionError(TreadleError):
    """A workflow, action or pack definition is invalid.

    Carries every problem found (not just the first), each with its file, line and column.
    """

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues) or "invalid definition")


class ParameterError(TreadleError):
    """Run parameters (or an action's input) do not satisfy the declared schema."""

    def __init__(self, problems: Sequence[str], *, subject: str = "parameters") -> None:
        self.problems = tuple(problems)
        self.subject = subject
        super().__init__(f"invalid {subject}: " + "; ".join(self.problems))


class ExpressionError(TreadleError):
    """A template failed to compile or to render."""

    def __init__(self, message: str, *, template: str | None = None) -> None:
        self.template = template
        super().__init__(message)


class LimitExceeded(TreadleError):
    """A configured limit (depth, executions, items, sizes) was crossed."""


class TooManyRequests(TreadleError):
    """A caller sent more requests than its rate limit allows; ``retry_after`` seconds
    until the limit admits it again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(TreadleError):
    """A run, inquiry, definition, action or pack that was asked for does not exist."""


class ConflictError(TreadleError):
    """The request does not fit the current state (e.g. answering a closed inquiry)."""


class ConfigurationError(TreadleError):
    """Settings are missing or inconsistent; raised at start-up with the setting's name."""


class ServiceUnavailable(TreadleError):
    """A database or broker could not be reached within the allowed time."""


class IllegalTransition(TreadleError):
    """A status change its transition table does not allow: a bug in what made it.

    Raised by :func:`treadle.common.statuses.moved`, through which every status change of
    the core goes, so a wrong move stops the decision instead of being stored. Carries the
    status moved from and the one asked for.
    """

    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new
        kind = type(old).__name__
        super().__init__(f"{kind} may not move from {str(old)!r} to {str(new)!r}")


class WaitTimeout(TreadleError):
    """A caller stopped waiting for a run before it ended; the run itself goes on.

    Carries the run's id and the status it had when the wait gave up.
    """

    def __init__(self, message: str, *, run_id: str, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(message)


class Unauthenticated(TreadleError):
    """No credentials, or credentials that are invalid, expired or revoked.

    The message never says which check failed nor repeats the credential.
    """


class Forbidden(TreadleError):
    """The principal is known, but its role or workspace does not allow what it asked."""
