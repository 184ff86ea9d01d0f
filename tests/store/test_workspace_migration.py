"""Migration 0012 puts what existed before workspaces in the ``default`` workspace.

Runs, events and keystore keys become ``default``'s; definitions stay shared, except those
a token published through the API, which become ``default``'s own (the only workspace the
API could have started their runs in). Down and up again keeps the data.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from treadle.scheduler.store import Store
from treadle.scheduler.store.migrate import alembic_config, current_revision, head_revision

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql)).all()]


def test_rows_from_before_workspaces_belong_to_the_default_workspace(
    store: Store, store_url: str
) -> None:
    command.downgrade(alembic_config(url=store_url), "0011")
    with store.engine.begin() as connection:
        for ref, author in (("pack.flow", None), ("api.flow", "token:deployer")):
            connection.execute(
                text(
                    "INSERT INTO definitions (ref, version, content_hash, dialect, documents,"
                    " author, created_at) VALUES (:ref, 1, 'h', 'attune', '{}', :author, :at)"
                ),
                {"ref": ref, "author": author, "at": T0},
            )
        connection.execute(
            text("INSERT INTO events (id, type, received_at) VALUES ('ev-1', 'order.placed', :at)"),
            {"at": T0},
        )
        connection.execute(
            text(
                "INSERT INTO keystore (key, value, secret, updated_at) VALUES ('k', '1', :f, :at)"
            ),
            {"f": False, "at": T0},
        )

    command.upgrade(alembic_config(url=store_url), "head")

    assert current_revision(store.engine) == head_revision()
    owners = dict(_rows(store, "SELECT ref, workspace FROM definitions"))  # type: ignore[arg-type]
    assert owners == {"pack.flow": "", "api.flow": "default"}
    assert _rows(store, "SELECT workspace, id FROM events") == [("default", "ev-1")]
    assert _rows(store, "SELECT workspace, key FROM keystore") == [("default", "k")]
    with store.unit_of_work() as uow:
        assert uow.definition_owner("api.flow", "default") == "default"
        assert uow.definition_owner("api.flow", "team-a") is None
        assert uow.definition_owner("pack.flow", "team-a") == ""
