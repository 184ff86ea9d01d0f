"""``treadle schedules`` as a user runs it, on a SQLite file: create, list, show, pause,
resume, trigger-now, backfill, fires, delete; refusals are clear and changes audited."""

from __future__ import annotations

from typing import Any

from treadle.common.settings import os_login

WORKFLOW = """\
ref: demo.tick
parameters:
  who:
    type: string
    default: x
tasks:
  - name: a
    action: core.echo
    input:
      message: "{{ parameters.who }}"
"""


def test_a_schedule_from_creation_to_deletion(treadle: Any) -> None:
    (treadle.workdir / "wf.yaml").write_text(WORKFLOW)
    treadle("workflows", "register", "wf.yaml", code=0)

    created = treadle(
        "schedules", "create", "nightly", "--workflow", "demo.tick", "--cron", "30 2 * * *",
        "--timezone", "Europe/Berlin", "-p", "who=ops", "--overlap", "buffer_one",
        "--missed", "last", "--json", code=0,
    ).json()  # fmt: skip
    assert (created["cron"], created["timezone"], created["parameters"]) == (
        "30 2 * * *", "Europe/Berlin", {"who": "ops"}
    )  # fmt: skip
    assert (created["overlap"], created["missed"], created["source"]) == (
        "buffer_one", "last", "api"
    )  # fmt: skip
    assert created["next_fire"] is not None

    refused = treadle(
        "schedules", "create", "bad", "--workflow", "demo.tick", "--cron", "61 * * *",
        "--timezone", "Mars/Olympus", code=2,
    )  # fmt: skip
    assert "4 field(s)" in refused.stderr
    assert "Mars/Olympus" in refused.stderr
    taken = treadle(
        "schedules", "create", "nightly", "--workflow", "demo.tick", "--interval", "5m", code=2
    )
    assert "has a schedule named 'nightly' already" in taken.stderr

    listed = treadle("schedules", "list", code=0)
    assert "nightly" in listed.stdout
    assert "cron '30 2 * * *' in Europe/Berlin" in listed.stdout

    treadle("schedules", "pause", "nightly", "--reason", "maintenance", code=0)
    shown = treadle("schedules", "show", "nightly", "--json", code=0).json()
    assert (shown["enabled"], shown["paused_reason"], shown["next_fire"]) == (
        False, "maintenance", None
    )  # fmt: skip
    treadle("schedules", "resume", "nightly", code=0)
    assert treadle("schedules", "show", "nightly", "--json", code=0).json()["enabled"]

    [fire] = treadle("schedules", "trigger-now", "nightly", "--json", code=0).json()
    assert (fire["kind"], fire["status"]) == ("manual", "started")
    assert fire["run_id"].startswith("r-")

    filled = treadle(
        "schedules", "backfill", "nightly", "2026-03-27T00:00:00Z", "2026-03-30T00:00:00Z",
        "--json", code=0,
    ).json()  # fmt: skip
    assert [f["nominal_time"] for f in filled] == [
        "2026-03-27T01:30:00+00:00",
        "2026-03-28T01:30:00+00:00",
        "2026-03-29T01:00:00+00:00",  # 02:30 did not exist that night: 03:00 CEST
    ]
    assert {f["status"] for f in filled} == {"started"}

    fires = treadle("schedules", "fires", "nightly", "--json", code=0).json()
    assert [f["kind"] for f in fires] == ["manual", "backfill", "backfill", "backfill"]
    table = treadle("schedules", "fires", "nightly", code=0).stdout
    assert table.splitlines()[0].split() == ["nominal", "time", "kind", "status", "run", "detail"]

    treadle("schedules", "delete", "nightly", code=0)
    missing = treadle("schedules", "show", "nightly", code=1)
    assert "no schedule named 'nightly'" in missing.stderr

    actions = [
        (entry["action"], entry["outcome"])
        for entry in treadle("audit", "list", "--json", code=0).json()
        if entry["action"].startswith("schedule.")
    ]
    assert ("schedule.create", "ok") in actions
    assert ("schedule.backfill", "ok") in actions
    assert ("schedule.delete", "ok") in actions
    assert all(
        entry["actor"] == f"cli:{os_login()}"
        for entry in treadle("audit", "list", "--json", code=0).json()
        if entry["action"] == "schedule.create"
    )
