"""The chart turns upgrade-at-start off as docker-compose.yml does: every service that opens
the database gets ``TREADLE_SCHEMA_UPGRADE=wait`` (``auto`` with ``schemaUpgradeAtStart:
true``), and the migrations Job, the one that upgrades, gets neither."""

from __future__ import annotations

from tests.deploy.helm.chart import render

from treadle.common.settings import SchemaUpgrade


def schema_settings(*sets: str) -> dict[str, str | None]:
    rendered = render("required", sets=sets)
    found: dict[str, str | None] = {}
    for manifest, container in rendered.containers():
        names = {var["name"]: var.get("value") for var in container.get("env", [])}
        if "TREADLE_DATABASE_URL" in names:
            found[manifest.name.removeprefix("release-name-treadle-")] = names.get(
                "TREADLE_SCHEMA_UPGRADE"
            )
    return found


def test_only_the_migrations_job_may_upgrade_the_schema() -> None:
    assert schema_settings() == {
        "api": SchemaUpgrade.WAIT.value,
        "beat": SchemaUpgrade.WAIT.value,
        "scheduler": SchemaUpgrade.WAIT.value,
        "migrate": None,
    }


def test_schema_upgrade_at_start_gives_the_services_auto() -> None:
    found = schema_settings("schemaUpgradeAtStart=true")
    assert found.pop("migrate") is None
    assert set(found.values()) == {SchemaUpgrade.AUTO.value}
