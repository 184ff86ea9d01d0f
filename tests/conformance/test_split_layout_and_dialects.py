"""The split-layout packs and the Orquesta-style file of ``attune/``.

* ``split-layout/test_pack``: ``test_pack.inquiry_workflow`` loads and validates through the
  pack loader, its parameters coming from the action file.
* ``split-layout/examples``: ``examples.process_cached_users`` uses Attune's data-cache
  iterator, which Treadle does not have: exactly one error naming ``iterate_cache`` and its
  line. (Its pack ref collides with the shipped examples pack, so it is loaded on its own.)
* ``orquesta-style-simple_workflow.yaml``: refused with one message naming the dialect and
  the line, by the loader and by ``treadle run`` (which starts nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.errors import ParameterError
from treadle.common.loader import load_packs, read_workflow_file
from treadle.common.validate import validate_paths, validate_workflow

REPO = Path(__file__).resolve().parents[2]
STUBS = Path(__file__).resolve().parent / "stubs"
ITERATE_CACHE = (
    "`iterate_cache` (Attune's data-cache iterator) is not supported by Treadle; "
    "iterate a list with `with_items` instead"
)


@pytest.fixture
def with_test_pack(attune: Path) -> Catalog:
    catalog = load_packs([REPO / "packs", attune / "split-layout" / "test_pack", STUBS])
    assert [str(issue) for issue in catalog.issues] == []
    return catalog


def test_the_test_pack_workflow_takes_its_parameters_from_the_action_file(
    attune: Path, with_test_pack: Catalog
) -> None:
    folder = attune / "split-layout" / "test_pack" / "actions"
    spec = with_test_pack.workflows["test_pack.inquiry_workflow"]
    assert with_test_pack.actions["test_pack.inquiry_workflow"].runner_type == "workflow"
    assert [(p.name, p.required, p.schema_.get("type")) for p in spec.parameters] == [
        ("purpose", True, "string"),
        ("prompt", True, "string"),
        ("response_schema", True, "object"),
        ("response_options", True, "array"),
        ("timeout_seconds", True, "integer"),
    ]
    assert spec.source.loc(("parameters", "timeout_seconds")).file == str(
        folder / "inquiry_workflow.yaml"
    )
    assert spec.source.loc(("tasks", 1, "wait_for")).file == str(
        folder / "workflows" / "inquiry_workflow.workflow.yaml"
    )
    assert [t.name for t in spec.tasks] == [
        "request_inquiry",
        "guarded_task",
        "approved_handler",
        "denied_handler",
        "timeout_handler",
    ]


def test_the_test_pack_validates_clean_even_when_strict(
    attune: Path, with_test_pack: Catalog
) -> None:
    spec = with_test_pack.workflows["test_pack.inquiry_workflow"]
    assert validate_workflow(spec, with_test_pack, strict=True) == []
    folder = attune / "split-layout" / "test_pack"
    assert validate_paths([folder], pack_paths=[STUBS], strict=True) == []


def test_the_action_file_parameters_are_enforced_before_a_run_starts(
    with_test_pack: Catalog, make_driver: Any
) -> None:
    spec = with_test_pack.workflows["test_pack.inquiry_workflow"]
    driver = make_driver(with_test_pack)
    with pytest.raises(ParameterError) as refused:
        driver.runner.start(spec, {"purpose": "p", "prompt": "q", "timeout_seconds": 0})
    assert sorted(refused.value.problems) == [
        "missing required parameter 'response_options'",
        "missing required parameter 'response_schema'",
        "parameter 'timeout_seconds': 0 is less than the minimum of 1",
    ]
    with driver.runner.store.unit_of_work() as uow:
        assert uow.list_runs() == []


def test_the_examples_pack_is_refused_with_one_iterate_cache_error(attune: Path) -> None:
    folder = attune / "split-layout" / "examples"
    graph_file = folder / "actions" / "workflows" / "process_cached_users.workflow.yaml"
    catalog = load_packs([folder])
    assert [str(issue) for issue in catalog.issues] == [f"{graph_file}:10:5: {ITERATE_CACHE}"]
    assert "examples.process_cached_users" not in catalog.workflows
    assert [str(issue) for issue in validate_paths([folder])] == [
        f"{graph_file}:10:5: {ITERATE_CACHE}"
    ]


def test_the_orquesta_file_is_refused_with_one_message_naming_the_dialect(
    attune: Path, tmp_path: Path, treadle_cli: Any
) -> None:
    path = attune / "orquesta-style-simple_workflow.yaml"
    spec, issues = read_workflow_file(str(path))
    assert spec is None
    [issue] = issues
    assert (issue.loc.line, issue.loc.col) == (19, 1)
    assert issue.message.startswith("this looks like a StackStorm Orquesta workflow")

    run = treadle_cli("run", path)
    assert run.code == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [str(issue)]
    assert not (tmp_path / "cli.db").exists()  # refused before any database was opened
