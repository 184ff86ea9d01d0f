"""values.yaml and values.schema.json agree, and a bad value is refused before anything is
rendered, with the schema's message naming the value (as Helm refuses it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.deploy.helm.chart import CHART, VALUES, HelmError, check_schema, render

from treadle.common.limits import Limits
from treadle.common.settings import Settings


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


def test_the_schema_is_a_valid_draft_7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(_schema())


def test_values_yaml_is_valid() -> None:
    check_schema(CHART, yaml.safe_load((CHART / "values.yaml").read_text()))


@pytest.mark.parametrize("name", sorted(f.stem for f in VALUES.glob("*.yaml")))
def test_the_test_values_merged_with_the_defaults_are_valid(name: str) -> None:
    render(name)  # raises HelmError naming each value the schema refuses


def test_every_value_the_schema_knows_has_a_default_in_values_yaml() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert sorted(_schema()["properties"]) == sorted(defaults)


def test_the_settings_the_chart_accepts_are_real_settings() -> None:
    names = _schema()["properties"]["settings"]["propertyNames"]["enum"]
    unknown = [
        name
        for name in names
        if not (
            name in Settings.model_fields
            or (
                name.startswith("limits__") and name.removeprefix("limits__") in Limits.model_fields
            )
        )
    ]
    assert unknown == []
    # set elsewhere: from Secrets, or from packs
    assert not {"database_url", "broker_url", "secret_key", "golden_key", "pack_paths"} & set(names)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            "worker: {groups: {gpu: {concurrency: 0}}}",
            "- worker.groups.gpu.concurrency: 0 is less than the minimum of 1",
        ),
        (
            "worker: {groups: {gpu: {pool: gevent}}}",
            "- worker.groups.gpu.pool: 'gevent' is not one of ['prefork', 'threads', 'solo']",
        ),
        (
            "settings: {delivery_limt: 5}",
            "- settings: 'delivery_limt' is not one of",
        ),
        (
            "beat: {replicas: 2}",
            "- beat: Additional properties are not allowed ('replicas' was unexpected)",
        ),
        ("worker: {groups: {GPU_1: {}}}", "- worker.groups: 'GPU_1' does not match"),
        ("broker: {type: kafka}", "- broker.type: 'kafka' is not one of ['rabbitmq', 'redis']"),
    ],
    ids=["concurrency", "pool", "setting-typo", "beat-replicas", "group-name", "broker"],
)
def test_a_bad_value_is_refused_with_the_schemas_message(
    tmp_path: Path, values: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(values)
    with pytest.raises(HelmError) as failure:
        render("required", bad)
    text = str(failure.value)
    assert text.startswith(
        "Error: values don't meet the specifications of the schema(s) in the following "
        "chart(s):\ntreadle:\n"
    ), text
    assert message in text, text
