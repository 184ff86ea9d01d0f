"""Governance policies: the worker holds a policy action to its contract.

An action file with ``policy: true`` is a policy. It returns ``{"decision": "allow" |
"require_approval" | "deny", "reason": text}``. ``deny`` fails the attempt with error type
``PolicyDenied`` and the reason as its message, so the guarded step is never reached and
the run follows the check's failure transitions; ``allow`` and ``require_approval``
succeed with the result as returned, for the workflow's transitions to route on. Anything
else is a broken policy and fails the attempt with ``InvalidPolicyDecision``: a check that
cannot say what it decided must not let the step through.
"""

from __future__ import annotations

from typing import Any, Final

from treadle.worker.errors import ActionError

#: The decisions a policy may return.
DECISIONS: Final = ("allow", "require_approval", "deny")


def enforce_decision(action_ref: str, result: Any) -> None:
    """Raise :class:`ActionError` for a denial or a result that is not a decision."""
    decision = result.get("decision") if isinstance(result, dict) else None
    if decision not in DECISIONS:
        raise ActionError(
            "InvalidPolicyDecision",
            f"policy '{action_ref}' returned {_shown(result)}; a policy returns "
            '{"decision": "allow" | "require_approval" | "deny", "reason": ...}',
        )
    if decision == "deny":
        reason = result.get("reason")
        message = str(reason) if reason else f"policy '{action_ref}' denied the step"
        raise ActionError("PolicyDenied", message, {"policy": action_ref, "result": result})


def _shown(result: Any) -> str:
    text = repr(result)
    return text if len(text) <= 200 else text[:197] + "..."
