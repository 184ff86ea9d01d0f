"""The metrics table of docs/operations.md, made from common/metrics_catalog.py.

``python -m tests.deploy.metrics_table`` prints it; ``--write`` puts it in
docs/operations.md between its markers. tests/deploy/test_operations_doc.py fails while the
document's table differs from the catalogue's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from treadle.common.metrics_catalog import CATALOG, MetricKind, MetricSource, MetricSpec

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
START = "<!-- metrics-table: made by `python -m tests.deploy.metrics_table --write` -->"
END = "<!-- /metrics-table -->"

EXPORTED_BY = {
    MetricSource.SCHEDULER: "`treadle scheduler`",
    MetricSource.WORKER: "`treadle worker`",
    MetricSource.API: "`treadle api`",
    MetricSource.BEAT: "`treadle beat`",
    MetricSource.RUNS: "the process that saves the change (scheduler, API, beat)",
}


def _series(spec: MetricSpec) -> str:
    if spec.kind is MetricKind.HISTOGRAM:
        return f"`{spec.name}` (`_bucket`, `_sum`, `_count`)"
    return f"`{spec.series[0]}`"


def table() -> str:
    """The table, one row per metric of the catalogue, in its order."""
    rows = [
        "| metric | type | labels | exported by | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in CATALOG:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "-"
        exported_by = EXPORTED_BY.get(spec.source, spec.source.value)
        meaning = spec.help.replace("|", "\\|")
        rows.append(
            f"| {_series(spec)} | {spec.kind.value} | {labels} | {exported_by} | {meaning} |"
        )
    return "\n".join(rows)


def documented_table(text: str) -> str:
    """The table between the markers of ``text``."""
    if START not in text or END not in text:
        raise ValueError(f"docs/operations.md lacks the markers {START!r} and {END!r}")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    before = text.split(START, 1)[0]
    after = text.split(END, 1)[1]
    OPERATIONS.write_text(f"{before}{START}\n{table()}\n{END}{after}", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(table())
