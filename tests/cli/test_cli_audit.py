"""What ``treadle`` commands change on the database is in the audit log, as ``treadle audit
list`` shows it: who (``cli:<login>``, workspace ``default``), what (the API's action
names), the target and how it ended, whether the command ran the work here (embedded) or
left it to the services (``--distributed``). A refused command records why.
"""

from __future__ import annotations

import re
from typing import Any

from treadle.common.settings import os_login

ME = f"cli:{os_login()}"


def entries(treadle: Any) -> list[dict[str, Any]]:
    """The audit log, oldest first."""
    return list(reversed(treadle("audit", "list", "--json", code=0).json()))


def seen(treadle: Any) -> list[tuple[str, str | None, str]]:
    return [(e["action"], e["target"], e["outcome"]) for e in entries(treadle)]


def test_runs_and_their_controls_are_recorded_as_the_cli_user(treadle: Any) -> None:
    run = treadle("run", "examples.hello_world", "--json", "-q", code=0).json()
    refused = treadle("runs", "retry", run["id"], code=2)
    assert "only failed, timed out or canceled runs can be retried" in refused.stderr
    treadle("runs", "pause", "r-nope", "--distributed", code=2)

    waiting = treadle("run", "examples.inquiry", "-q", code=3)
    run_id = re.search(r"run (r-[0-9a-f]+) is waiting", waiting.stderr).group(1)  # type: ignore[union-attr]
    inquiry_id = re.search(r"inquiry (iq_[0-9a-f]+)", waiting.stderr).group(1)  # type: ignore[union-attr]
    treadle("runs", "pause", run_id, "--distributed", "--reason", "lunch", code=0)
    treadle("runs", "resume", run_id, "--distributed", code=0)
    treadle("inquiry", "respond", inquiry_id, "--data", '{"approved": "yes"}', code=2)
    treadle("inquiry", "respond", inquiry_id, "--data", '{"approved": true}', "-q", code=0)

    assert seen(treadle) == [
        ("workflow.publish", "examples.hello_world", "ok"),
        ("run.start", "examples.hello_world", "ok"),
        ("run.retry", run["id"], "refused"),
        ("run.pause", "r-nope", "failed"),
        ("workflow.publish", "examples.inquiry", "ok"),
        ("run.start", "examples.inquiry", "ok"),
        ("run.pause", run_id, "ok"),
        ("run.resume", run_id, "ok"),
        ("inquiry.respond", inquiry_id, "failed"),
        ("inquiry.respond", inquiry_id, "ok"),
    ]
    logged = entries(treadle)
    assert {(e["actor"], e["workspace"]) for e in logged} == {(ME, "default")}
    assert logged[1]["details"]["run"] == run["id"]
    assert logged[6]["details"] == {"reason": "lunch"}
    assert "'yes' is not of type 'boolean'" in logged[8]["details"]["error"]
    assert logged[9]["details"] == {"responder": os_login()}

    # the text listing: one line per entry, newest first
    lines = treadle("audit", "list", "--action", "run.retry", code=0).stdout.splitlines()
    assert len(lines) == 1
    assert f"{ME}  default  run.retry  {run['id']}  refused" in lines[0]


def test_keystore_events_publishing_and_maintenance_are_recorded(treadle: Any) -> None:
    from treadle.common.secret_box import generate_key

    treadle.env["TREADLE_SECRET_KEY"] = generate_key()
    treadle("kv", "set", "db.password", "hunter22", "--secret", code=0)
    treadle("kv", "set", "region", '"eu"', code=0)
    treadle("kv", "delete", "region", code=0)
    treadle("kv", "delete", "region", code=2)
    treadle("events", "send", "order.placed", "--subject", "o-1", "--id", "ev-1", code=0)
    treadle("events", "send", " ", "--id", "ev-2", code=2)  # no type: refused
    treadle.write(
        "flow.yaml",
        """\
        ref: demo.flow
        tasks:
          - name: only
            action: core.noop
        """,
    )
    treadle("workflows", "register", "flow.yaml", code=0)
    treadle("secrets", "rotate-key", code=0)
    done = treadle("run", "flow.yaml", "-q", "--json", code=0).json()
    treadle("runs", "purge", "--older-than", "0s", code=0)

    assert seen(treadle) == [
        ("kv.set", "db.password", "ok"),
        ("kv.set", "region", "ok"),
        ("kv.delete", "region", "ok"),
        ("kv.delete", "region", "failed"),
        ("event.send", "ev-1", "ok"),
        ("event.send", "ev-2", "failed"),
        ("workflow.publish", "demo.flow", "ok"),
        ("secrets.rotate-key", None, "ok"),
        ("workflow.publish", "demo.flow", "ok"),
        ("run.start", "demo.flow", "ok"),
        ("run.purge", None, "ok"),
    ]
    logged = entries(treadle)
    assert {e["actor"] for e in logged} == {ME}
    assert logged[0]["details"] == {"secret": True}
    assert "hunter22" not in treadle("audit", "list", "--json", code=0).stdout
    assert "keystore has no entry 'region'" in logged[3]["details"]["error"]
    assert logged[4]["details"] == {"type": "order.placed", "subject": "o-1"}
    assert "the event type must be non-empty text" in logged[5]["details"]["error"]
    assert logged[6]["details"] == {"version": 1, "new": True}
    assert logged[7]["details"]["keystore_current"] == 1
    assert logged[8]["details"] == {"version": 1, "new": False}  # the same definition
    assert logged[9]["details"]["run"] == done["id"]
    assert logged[10]["details"]["runs"] == 1
