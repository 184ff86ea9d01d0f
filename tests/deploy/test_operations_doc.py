"""docs/operations.md says what the catalogue and the alert rules say: its metrics table is
the catalogue's, every rule's runbook_url lands on its entry, and the alerts table gives
each rule's severity and ``for:`` as the rules file does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from tests.deploy.metrics_table import documented_table, table

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
RULES = ROOT / "deploy" / "prometheus" / "treadle-alerts.yml"


def _text() -> str:
    return OPERATIONS.read_text(encoding="utf-8")


def _rules() -> list[tuple[str, dict[str, Any]]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [(group["name"], rule) for group in groups for rule in group["rules"]]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)
    return {slug(heading) for heading in headings}


def test_slug_is_githubs() -> None:
    assert slug("TreadleOutboxStale") == "treadleoutboxstale"
    assert slug("The `treadle beat` loop, again") == "the-treadle-beat-loop-again"


def test_the_sections_other_engineers_extend_are_there() -> None:
    assert {"metrics", "alerts", "dashboards"} <= {
        slug(h) for h in re.findall(r"^## (.+)$", _text(), flags=re.MULTILINE)
    }


def test_the_metrics_table_is_the_catalogues() -> None:
    assert documented_table(_text()) == table(), (
        "docs/operations.md's metrics table differs from common/metrics_catalog.py: "
        "run `.venv/bin/python -m tests.deploy.metrics_table --write`"
    )


def test_every_runbook_url_lands_on_its_entry() -> None:
    anchors = _anchors(_text())
    missing = []
    for _group, rule in _rules():
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        if page != "docs/operations.md" or anchor not in anchors:
            missing.append(f"{rule['alert']}: {url}")
    assert missing == [], "runbook_url without its heading in docs/operations.md:\n" + "\n".join(
        missing
    )


def test_every_runbook_entry_says_what_it_means_what_to_check_and_what_to_do() -> None:
    text = _text()
    problems = []
    for _group, rule in _rules():
        match = re.search(rf"^### {rule['alert']}\n(.*?)(?=^##)", text + "\n## end", re.M | re.S)
        body = match.group(1) if match else ""
        for part in ("**Means.**", "**Check first.**", "**Do.**"):
            if part not in body:
                problems.append(f"{rule['alert']}: no {part}")
    assert problems == [], "\n".join(problems)


def _aos_alert(group: str, name: str) -> str:
    """The alerts table's "AOS alert" cell: the AOS group and name a rule stands for."""
    if not group.startswith("treadle_workflow_"):
        return ""
    return f"`{group.replace('treadle_', 'aos_', 1)}` {name.removeprefix('Treadle')}"


def test_the_alerts_table_agrees_with_the_rules() -> None:
    rows = {
        cells[0]: cells
        for line in _text().splitlines()
        if line.startswith("| [Treadle")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    problems = []
    for group, rule in _rules():
        name = rule["alert"]
        expected = [
            f"[{name}](#{name.lower()})",
            f"`{group}`",
            _aos_alert(group, name),
            rule["labels"]["severity"],
            rule["for"],
        ]
        got = rows.pop(f"[{name}](#{name.lower()})", None)
        if got is None:
            problems.append(f"{name}: no row in the alerts table")
        elif got[:5] != expected:
            problems.append(f"{name}: the table says {got[:5]}, the rules {expected}")
    problems += [f"{name}: in the table, not in the rules" for name in rows]
    assert problems == [], "\n".join(problems)


def test_every_link_inside_the_page_resolves() -> None:
    text = _text()
    anchors = _anchors(text)
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", text)) - anchors)
    assert broken == []
