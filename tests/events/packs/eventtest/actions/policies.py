"""eventtest.amount_policy: a pack's own policy, following the policy contract."""

from __future__ import annotations


def amount_policy(amount: float, limit: float = 1000) -> dict[str, str]:
    if amount > limit:
        return {"decision": "deny", "reason": f"{amount:g} is over the limit of {limit:g}"}
    if amount >= 100:
        return {"decision": "require_approval", "reason": f"{amount:g} needs a second pair of eyes"}
    return {"decision": "allow", "reason": f"{amount:g} is small"}
