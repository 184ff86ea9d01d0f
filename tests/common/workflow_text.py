"""Reading Attune workflow text in the loader tests: the spec, or every problem at its line."""

from __future__ import annotations

import textwrap

from treadle.common.loader import load_workflow_text, read_workflow_text
from treadle.common.spec import WorkflowSpec


def load(text: str, **kwargs: str) -> WorkflowSpec:
    return load_workflow_text(textwrap.dedent(text), "wf.yaml", **kwargs)


def problems(text: str) -> list[str]:
    """Every issue as ``line:col: message``."""
    _, issues = read_workflow_text(textwrap.dedent(text), "wf.yaml")
    return [f"{i.loc.line}:{i.loc.col}: {i.message}" for i in issues]


def one_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


MINIMAL = """\
ref: demo.minimal
tasks:
  - name: only
    action: core.noop
"""
