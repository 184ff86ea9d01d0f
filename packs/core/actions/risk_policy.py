"""core.risk_policy: the shipped governance policy, deciding by the step's risk level.

It is a policy action (``policy: true`` in its action file): it returns ``{"decision":
"allow" | "require_approval" | "deny", "reason": ...}`` and the worker fails the task with
error type ``PolicyDenied`` on deny, so the run follows the task's failure transitions.
Packs ship their own policies by the same contract (docs/events.md).
"""

from __future__ import annotations

_DECISIONS = {
    "low": "allow",
    "medium": "allow",
    "high": "require_approval",
    "critical": "deny",
}


def _level(risk_level: str) -> str:
    text = risk_level.strip().lower()
    return text.removeprefix("risk_level_")


def risk_policy(action_type: str, risk_level: str) -> dict[str, str]:
    level = _level(risk_level)
    decision = _DECISIONS.get(level)
    if decision is None:  # the parameter's enum stops this; deny whatever slips through
        return {"decision": "deny", "reason": f"{action_type}: unknown risk level {risk_level!r}"}
    if decision == "deny":
        return {"decision": decision, "reason": f"{action_type}: {level} risk is not allowed"}
    if decision == "require_approval":
        return {"decision": decision, "reason": f"{action_type}: {level} risk needs approval"}
    return {"decision": decision, "reason": f"{action_type}: {level} risk is allowed"}
