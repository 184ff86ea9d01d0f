"""Every scenario, replayed against its own definition, shows no difference.

``treadle replay --against`` must say "identical" for an unchanged version, whatever the
run did: retries and their back-off, timeouts, delays, inquiries and their deadlines,
event waits, child runs, loops, pauses and cancellations. The scenarios cover each of
those; their recorded event logs are fed to the same definition again, matched by task,
pass, item and attempt instead of by id.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.scheduler.rehearsal import EPOCH
from treadle.scheduler.version_replay import replay_against

from .test_scenarios import SCENARIOS, load_scenario, rehearse_scenario


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_a_scenario_replays_against_its_own_definition_identically(path: Path) -> None:
    record, graph = rehearse_scenario(path, load_scenario(path))
    report = replay_against(graph, graph, "r-rehearsal", EPOCH, record.events)
    assert [str(d) for d in report.divergences] == []
