"""Publishing a definition writes ``definition.create`` for its first version and
``version.publish`` for every new version; unchanged content writes nothing."""

from __future__ import annotations

from treadle.scheduler.store.lifecycle_repo import LifecycleEventEntry

from .conftest import chain, stored_events, types_of


def _definition_events(events: list[LifecycleEventEntry]) -> list[LifecycleEventEntry]:
    return [e for e in events if e.run_id is None]


def test_first_publish_creates_and_new_versions_publish(make_runner) -> None:
    runner = make_runner()
    runner.definitions.publish(chain(), at=runner.clock(), author="ana")
    runner.definitions.publish(chain(), at=runner.clock(), author="ana")  # unchanged
    runner.definitions.publish(chain(tasks=3), at=runner.clock(), author="bo")

    events = _definition_events(stored_events(runner.store))
    assert types_of(events) == ["definition.create", "version.publish", "version.publish"]
    create, first, second = (e.cloudevent for e in events)
    assert create["id"] == "definition/shared/demo.chain/1/create"
    assert (create["source"], create["subject"]) == (
        "treadle/shared/definitions/demo.chain",
        "demo.chain",
    )
    assert "traceid" not in create
    assert {k: create["data"][k] for k in ("id", "name", "latest_version")} == {
        "id": "demo.chain",
        "name": "demo.chain",
        "latest_version": 1,
    }
    assert (first["data"]["id"], first["data"]["version"], first["data"]["author"]) == (
        "demo.chain@v1",
        1,
        "ana",
    )
    assert [s["id"] for s in second["data"]["steps"]] == ["t0", "t1", "t2"]
    assert (second["id"], second["data"]["version"], second["data"]["author"]) == (
        "definition/shared/demo.chain/2/publish",
        2,
        "bo",
    )


def test_definitions_write_nothing_with_the_setting_off(make_runner) -> None:
    runner = make_runner(lifecycle_events=False)
    runner.definitions.publish(chain(), at=runner.clock())
    assert stored_events(runner.store) == []
