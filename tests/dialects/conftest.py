"""Fixtures for the workflows/v1 and AOS dialect tests.

The conformance documents live outside the repository (``../shared/conformance/``); tests
that read them skip when the folder is absent. The agents and skills the documents call
come from the stub pack in ``stubs/dialect_stubs`` (one pack whose action files give full
refs: ``company.research``, ``skill.http_call``, ``aos.transform`` ...). Runs use the real
embedded runner on a SQLite file under the test's temporary folder; nothing is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.renderings import StoredRun, load_stored_run
from treadle.scheduler.service.starting import RunOptions

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance"
V1 = CONFORMANCE / "workflows-v1"
AOS = CONFORMANCE / "aos"
STUBS = Path(__file__).resolve().parent / "stubs"
SHIPPED_PACKS = REPO / "packs"
IDENTITY = {"login": "dialect-tester", "via": "test"}


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        pytest.skip(f"{what} conformance fixtures not found at {path}")
    return path


@pytest.fixture
def v1_dir() -> Path:
    """``shared/conformance/workflows-v1``; the test is skipped when it is absent."""
    return _folder(V1, "workflows/v1")


@pytest.fixture
def aos_dir() -> Path:
    """``shared/conformance/aos``; the test is skipped when it is absent."""
    return _folder(AOS, "AOS")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# -- the event-trigger example (handle_trigger_request.json / _response.json) ------------------
# The response names two definitions the fixtures do not include; these are them, written
# from what the response shows of their runs.


def intake_version() -> str:
    """``wf_contact_intake`` as the trigger response shows it: started by contact.created."""
    return json.dumps(
        {
            "definition_id": "wf_contact_intake",
            "version": 3,
            "trigger": {
                "trigger_type": "TRIGGER_TYPE_EVENT",
                "event_type": "contact.created",
                "event_subject": "crm.contact",
            },
            "steps": [
                {
                    "id": "research-contact",
                    "name": "Research Contact",
                    "step_type": "STEP_TYPE_AGENT_ACTION",
                    "agent_id": "agent_research",
                    "action_type": "contact.research",
                },
            ],
            "edges": [],
        }
    )


def follow_up_version() -> str:
    """``wf_reply_follow_up``: waits for contact.created, then follows up."""
    return json.dumps(
        {
            "definition_id": "wf_reply_follow_up",
            "version": 1,
            "trigger": {
                "trigger_type": "TRIGGER_TYPE_WEBHOOK",
                "tap_provider": "hubspot",
                "tap_entity_type": "contact",
                "tap_action": "created",
            },
            "steps": [
                {
                    "id": "wait-for-reply",
                    "name": "Wait for Reply",
                    "step_type": "STEP_TYPE_WAIT_FOR_EVENT",
                    "event_type_pattern": "contact.created",
                },
                {
                    "id": "send-follow-up",
                    "name": "Send Follow Up",
                    "step_type": "STEP_TYPE_AGENT_ACTION",
                    "agent_id": "agent_outreach",
                    "action_type": "email.send",
                },
            ],
            "edges": [{"from_step_id": "wait-for-reply", "to_step_id": "send-follow-up"}],
        }
    )


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The shipped packs and the stub pack."""
    loaded = load_packs([SHIPPED_PACKS, STUBS])
    assert [str(issue) for issue in loaded.issues] == []
    return loaded


@dataclass
class Driver:
    """Starts, follows, answers and reads runs on one embedded runner."""

    runner: EmbeddedRunner

    def start(self, spec: WorkflowSpec, parameters: dict[str, Any] | None = None) -> str:
        run_id = self.runner.start(spec, parameters or {}, RunOptions(identity=IDENTITY))
        self.runner.follow(run_id)
        return run_id

    def follow(self, *run_ids: str) -> None:
        self.runner.follow_all(list(run_ids))

    def answer(self, run_id: str, response: Any, task: str | None = None) -> None:
        """Answer the run's pending inquiry (of ``task`` if given), then follow the run."""
        with self.runner.store.unit_of_work() as uow:
            pending = [
                i
                for i in uow.list_inquiries(run_id=run_id)
                if i.status.value == "pending" and (task is None or i.task == task)
            ]
        assert len(pending) == 1, f"expected one pending inquiry, found {pending}"
        self.runner.respond(pending[0].id, response, "approver")
        self.runner.follow(run_id)

    def stored(self, run_id: str) -> StoredRun:
        return load_stored_run(self.runner.store, run_id, self.runner.definitions)

    def status(self, run_id: str) -> str:
        return self.runner.state_of(run_id).status.value


@pytest.fixture
def make_driver(tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    """``make_driver(catalog)``: a driver on a fresh SQLite file."""
    runners: list[EmbeddedRunner] = []

    def make(catalog: Catalog, **options: Any) -> Driver:
        url = f"sqlite:///{tmp_path / f'dialects-{len(runners)}.db'}"
        runner = EmbeddedRunner(Settings(database_url=url), catalog, **options)
        runners.append(runner)
        return Driver(runner)

    yield make
    for runner in runners:
        runner.close()


@pytest.fixture
def driver(make_driver: Callable[..., Driver], catalog: Catalog) -> Driver:
    return make_driver(catalog)
