"""Actions that cannot run or cannot be reported fail cleanly, and nothing else is affected."""

from __future__ import annotations

import re

import pytest

from .conftest import Deployment
from .faults_pack import PAYLOAD_LIMIT

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_an_unimportable_module_a_non_json_result_and_an_oversized_one_fail_their_tasks_only(
    shared_deployment: Deployment,
) -> None:
    services = shared_deployment
    with services.client() as client:
        run_id = client.start("faults.bad_actions")
    services.wait_for_runs([run_id], timeout=60)

    document = services.document(run_id)
    tasks = {task["name"]: task for task in document["tasks"]}
    # The failure transitions ran, and the normal task did its work.
    assert document["status"] == "succeeded", document
    assert document["output"] == {
        "normal": "all well",
        "handled": ["ActionImportError", "ResultNotSerializable", "PayloadTooLarge"],
    }
    assert (tasks["normal"]["status"], tasks["normal"]["result"]) == (
        "succeeded",
        {"message": "all well"},
    )
    for name in ("note_broken", "note_not_json", "note_too_big"):
        assert tasks[name]["status"] == "succeeded"

    broken = tasks["broken"]
    assert broken["status"] == "failed"
    assert broken["error"]["type"] == "ActionImportError"
    assert re.fullmatch(
        r"cannot import \S+/faults/actions/broken\.py for action 'faults\.broken': "
        r"ModuleNotFoundError: No module named 'treadle_faults_no_such_module'",
        broken["error"]["message"],
    ), broken["error"]["message"]

    not_json = tasks["not_json"]
    assert not_json["status"] == "failed"
    assert not_json["error"]["type"] == "ResultNotSerializable"
    assert not_json["error"]["message"] == (
        "result of action 'faults.not_json' is not JSON-serialisable: "
        "a value of type datetime at ['when']"
    )

    too_big = tasks["too_big"]
    assert too_big["status"] == "failed"
    assert too_big["error"]["type"] == "PayloadTooLarge"
    size = len('{"blob":""}') + 2 * PAYLOAD_LIMIT
    assert too_big["error"]["message"] == (
        f"result of action 'faults.too_big' is {size} bytes of JSON, "
        f"over the limit of {PAYLOAD_LIMIT} bytes"
    )
    # Each bad task failed once, without retries or a lost worker.
    assert {tasks[n]["attempts"] for n in ("broken", "not_json", "too_big")} == {1}
    assert all(process.running for process in services.processes)
