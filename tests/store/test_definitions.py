"""Definitions are versioned by content; the catalog registry mirrors the loaded packs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from treadle.common.catalog import Catalog
from treadle.common.errors import NotFound
from treadle.common.spec import ActionSpec, PackSpec, ParameterSpec, RunnerType, WorkflowSpec
from treadle.scheduler.store import Store

HELLO = {"workflows/hello.yaml": "ref: examples.hello\ntasks: []\n"}


def test_same_content_keeps_its_version_and_changed_content_gets_the_next(
    store: Store, build
) -> None:
    t0 = build.t0
    with store.unit_of_work() as uow:
        first = uow.register_definition(
            "examples.hello", HELLO, dialect="attune", author="ada", at=t0
        )
        same = uow.register_definition(
            "examples.hello", dict(HELLO), dialect="attune", author="bob", at=t0 + timedelta(1)
        )
        changed = uow.register_definition(
            "examples.hello",
            {**HELLO, "actions/hello.yaml": "ref: examples.hello\nworkflow_file: w.yaml\n"},
            dialect="attune",
            author="bob",
            at=t0 + timedelta(2),
        )
        other = uow.register_definition(
            "examples.other", HELLO, dialect="attune", author=None, at=t0
        )
    assert (first.version, first.created) == (1, True)
    assert (same.version, same.created, same.author, same.created_at) == (1, False, "ada", t0)
    assert same.content_hash == first.content_hash
    assert (changed.version, changed.created) == (2, True)
    assert changed.content_hash != first.content_hash
    assert other.version == 1
    with store.unit_of_work() as uow:
        latest = uow.get_definition("examples.hello")
        v1 = uow.get_definition("examples.hello", 1)
        versions = uow.list_definition_versions("examples.hello")
        with pytest.raises(NotFound, match="version 3"):
            uow.get_definition("examples.hello", 3)
        with pytest.raises(NotFound, match=r"examples\.nope"):
            uow.get_definition("examples.nope")
        assert uow.list_definition_versions("examples.nope") == []
    assert latest.version == 2
    assert set(latest.documents) == {"workflows/hello.yaml", "actions/hello.yaml"}
    assert v1.documents == HELLO
    assert v1.dialect == "attune"
    assert [(v.version, v.author) for v in versions] == [(1, "ada"), (2, "bob")]


def test_document_order_does_not_change_the_hash(store: Store, build) -> None:
    docs = {"b.yaml": "b", "a.yaml": "a"}
    with store.unit_of_work() as uow:
        one = uow.register_definition("x.y", docs, dialect="attune", author=None, at=build.t0)
        two = uow.register_definition(
            "x.y", dict(reversed(list(docs.items()))), dialect="attune", author=None, at=build.t0
        )
    assert (one.version, two.version, two.created) == (1, 1, False)


def _catalog(*action_names: str) -> Catalog:
    pack = PackSpec(ref="ops", version="1.2.0", config={"region": "eu"}, path="/packs/ops")
    actions = {
        f"ops.{name}": ActionSpec(
            ref=f"ops.{name}",
            runner_type=RunnerType.PYTHON,
            entry_point=f"{name}.py:main",
            queue="ops-pool" if name == "deploy" else None,
            parameters=(ParameterSpec(name="target", schema_={"type": "string"}, required=True),),
        )
        for name in action_names
    }
    workflows = {"ops.release": WorkflowSpec(ref="ops.release")}
    return Catalog(packs={"ops": pack}, actions=actions, workflows=workflows)


def test_the_catalog_is_registered_and_refreshed_per_pack(store: Store, build) -> None:
    t0 = build.t0
    core = Catalog(
        packs={"core": PackSpec(ref="core")},
        actions={"core.noop": ActionSpec(ref="core.noop", entry_point="noop.py:main")},
    )
    with store.unit_of_work() as uow:
        uow.register_catalog(core, t0)
        uow.register_catalog(_catalog("deploy", "check"), t0)
    with store.unit_of_work() as uow:
        rows = {row["ref"]: row for row in uow.registered_actions()}
    assert set(rows) == {"core.noop", "ops.deploy", "ops.check", "ops.release"}
    assert rows["ops.deploy"]["queue"] == "ops-pool"
    assert rows["ops.deploy"]["runner_type"] == "python"
    assert rows["ops.deploy"]["parameters"][0]["name"] == "target"
    assert rows["ops.release"]["runner_type"] == "workflow"
    assert rows["ops.release"]["pack_ref"] == "ops"

    with store.unit_of_work() as uow:
        uow.register_catalog(_catalog("deploy"), t0 + timedelta(1))
        rows = {row["ref"]: row for row in uow.registered_actions()}
    assert set(rows) == {"core.noop", "ops.deploy", "ops.release"}  # ops.check is gone
    assert rows["ops.deploy"]["registered_at"] == t0 + timedelta(1)
    assert rows["core.noop"]["registered_at"] == t0


def test_a_registered_packs_configuration_can_be_read_back(store: Store, clock) -> None:
    from treadle.common.catalog import Catalog
    from treadle.common.spec import PackSpec

    catalog = Catalog(packs={"deploy": PackSpec(ref="deploy", config={"registry": "r.example"})})
    with store.unit_of_work() as uow:
        uow.register_catalog(catalog, clock())
    with store.unit_of_work() as uow:
        assert uow.pack_config("deploy") == {"registry": "r.example"}
        assert uow.pack_config("nope") == {}
