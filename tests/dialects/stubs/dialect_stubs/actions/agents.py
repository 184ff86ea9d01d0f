"""Stub agents of the SDR pipeline: plausible, deterministic results.

Each result carries ``cost_usd`` (how workflows/v1 renderings learn a step's cost) and
echoes what the agent was given, so tests can see the step metadata and the payload.
"""

from __future__ import annotations

from typing import Any


def _given(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def research_company(
    payload: Any = None,
    action_type: str | None = None,
    agent_id: str | None = None,
    prompt_name: str | None = None,
    skill_id: str | None = None,
    required_capability: str | None = None,
) -> dict[str, Any]:
    snapshot = (payload or {}).get("snapshot") or {}
    return {
        "company_name": snapshot.get("company", "Acme Corporation"),
        "domain": "acme.com",
        "employee_count": 250,
        "industry": "manufacturing",
        "icp_score": 0.87,
        "lead": payload,
        "agent": _given(
            action_type=action_type,
            agent_id=agent_id,
            prompt_name=prompt_name,
            skill_id=skill_id,
            required_capability=required_capability,
        ),
        "cost_usd": 0.034,
    }


def qualify_lead(
    payload: Any = None,
    action_type: str | None = None,
    agent_id: str | None = None,
    prompt_name: str | None = None,
    skill_id: str | None = None,
    required_capability: str | None = None,
) -> dict[str, Any]:
    lead = (payload or {}).get("lead") or {}
    value = (lead.get("snapshot") or {}).get("deal_value_usd", 85000)
    return {
        "qualified": True,
        "deal_value_usd": value,
        "qualification_score": 0.91,
        "recommended_sequence": "enterprise-outbound",
        "agent": _given(agent_id=agent_id, prompt_name=prompt_name, skill_id=skill_id),
        "cost_usd": 0.021,
    }


def send_outreach(
    payload: Any = None,
    action_type: str | None = None,
    agent_id: str | None = None,
    prompt_name: str | None = None,
    skill_id: str | None = None,
    required_capability: str | None = None,
) -> dict[str, Any]:
    return {
        "sent": True,
        "to": "jane.doe@acme.com",
        "sequence": (payload or {}).get("recommended_sequence"),
        "cost_usd": 0.002,
    }
