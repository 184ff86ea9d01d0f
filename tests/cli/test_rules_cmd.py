"""``treadle rules`` as a user runs it, on a SQLite file: list, show, disable, enable,
matches; a missing rule is a clear failure and every switch is audited."""

from __future__ import annotations

from typing import Any

from tests.rule_seed import seed_rules

from treadle.scheduler.store import Store
from treadle.scheduler.store.base import utc_now


def test_rules_from_listing_to_matches(treadle: Any) -> None:
    store = Store.open(f"sqlite:///{treadle.database}")
    try:
        seed_rules(store, treadle.workdir, utc_now(), action="core.noop")
        listed = treadle("rules", "list", "--json", code=0).json()
        assert [(r["ref"], r["enabled"]) for r in listed] == [
            ("seed.nightly", True), ("seed.on_order", True)
        ]  # fmt: skip
        assert listed[0]["schedule"] == "rule:seed.nightly"
        assert listed[0]["next_fire"] is not None
        table = treadle("rules", "list", code=0).stdout
        assert "core.crontimer" in table
        assert "shop.order.*" in table

        shown = treadle("rules", "show", "nightly", "--json", code=0).json()  # by name
        assert (shown["ref"], shown["matches"]) == ("seed.nightly", {})
        assert shown["trigger"]["parameters"]["timezone"] == "Europe/Berlin"

        assert "disabled rule 'seed.nightly'" in treadle("rules", "disable", "seed.nightly").stdout
        off = treadle("rules", "show", "seed.nightly", "--json", code=0).json()
        assert (off["enabled"], off["next_fire"]) == (False, None)
        schedule = treadle("schedules", "show", "rule:seed.nightly", "--json", code=0).json()
        assert (schedule["enabled"], schedule["source"]) == (False, "rule")
        treadle("rules", "enable", "seed.nightly", code=0)
        assert treadle("rules", "show", "seed.nightly", "--json", code=0).json()["enabled"]
        refused = treadle("schedules", "delete", "rule:seed.nightly", code=2)
        assert "timer rule" in refused.stderr

        sent = treadle(
            "events", "send", "shop.order.created", "--data", '{"total": 500}', "--id", "ev-big"
        ).json()
        assert len(sent["started_runs"]) == 1
        treadle(
            "events", "send", "shop.order.created", "--data", '{"total": 5}', "--id", "ev-small"
        )
        matches = treadle("rules", "matches", "seed.on_order", "--json", code=0).json()
        outcomes = {m["event_id"]: (m["outcome"], bool(m["run_id"])) for m in matches}
        assert outcomes == {"ev-big": ("started", True), "ev-small": ("criteria_false", False)}
        assert "criteria_false" in treadle("rules", "matches", "on_order", code=0).stdout

        missing = treadle("rules", "show", "seed.nope", code=1)
        assert "no rule named 'seed.nope'" in missing.stderr
        treadle("rules", "disable", "seed.nope", code=1)
        actions = [e["action"] for e in treadle("audit", "list", "--json", code=0).json()]
        assert {"rule.enable", "rule.disable"} <= set(actions)
    finally:
        store.close()
