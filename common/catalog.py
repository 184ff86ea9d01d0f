"""Everything the loaded packs provide: packs, actions and workflows, looked up by ref.

The loader builds a catalog from pack folders; the validator asks it whether action refs
exist; the graph compiler asks it what kind of runner an action has; the worker resolves
actions through it. It is plain data and does no I/O itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from treadle.common.errors import NotFound
from treadle.common.rules import RuleSpec
from treadle.common.source import Issue
from treadle.common.spec import ActionSpec, PackSpec, RunnerType, WorkflowSpec


@dataclass
class Catalog:
    """Packs, actions and workflows by ref, plus the issues found while loading them."""

    packs: dict[str, PackSpec] = field(default_factory=dict)
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    workflows: dict[str, WorkflowSpec] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    #: The packs' rules (``rules/*.yaml``) by ref.
    rules: dict[str, RuleSpec] = field(default_factory=dict)

    def kind_of(self, ref: str) -> RunnerType | None:
        """The runner of ``ref``: ``workflow`` for workflows, ``None`` if unknown."""
        if ref in self.workflows:
            return RunnerType.WORKFLOW
        action = self.actions.get(ref)
        return None if action is None else action.runner_type

    def knows(self, ref: str) -> bool:
        return ref in self.workflows or ref in self.actions

    def action(self, ref: str) -> ActionSpec:
        try:
            return self.actions[ref]
        except KeyError:
            raise NotFound(f"unknown action '{ref}'") from None

    def workflow(self, ref: str) -> WorkflowSpec:
        try:
            return self.workflows[ref]
        except KeyError:
            raise NotFound(f"unknown workflow '{ref}'") from None

    def pack_config(self, pack_ref: str) -> dict[str, object]:
        pack = self.packs.get(pack_ref)
        return {} if pack is None else dict(pack.config)

    def merged(self, other: Catalog) -> Catalog:
        """A catalog with ``other``'s entries added (``other`` wins on clashes)."""
        return Catalog(
            packs={**self.packs, **other.packs},
            actions={**self.actions, **other.actions},
            workflows={**self.workflows, **other.workflows},
            issues=[*self.issues, *other.issues],
            rules={**self.rules, **other.rules},
        )
