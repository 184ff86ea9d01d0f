"""A worker puts the secrets a dispatch carries into the input, and only there.

The action receives the values (inside larger strings too, or as whole JSON values); the
result and error it reports have them blanked out; a dispatch that lacks a secret, a
worker without the key or with another key fails the attempt with a clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from treadle.common.secret_box import Keyring, generate_key
from treadle.common.secret_refs import kv_reference, param_reference
from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus

KEY = generate_key()
TAG = "0123456789abcdef"
PASSWORD = "hunter2-is-long"
DB = kv_reference(TAG, "db.password")
CONFIG = param_reference(TAG, "run-1", "config")

ECHO = """
def main(url, config, echo=False):
    if echo == "raise":
        raise RuntimeError(f"cannot open {url}")
    return {"url_ok": url == "pg://app:hunter2-is-long@db", "port": config["port"],
            "echo": url if echo else None}
"""
PARAMS = {"url": {"type": "string"}, "config": {"type": "object"}, "echo": {}}


def _carried(*pairs: tuple[str, Any]) -> dict[str, str]:
    keyring = Keyring.parse(KEY)
    return {ref: keyring.encrypt(value) for ref, value in pairs}


def _input(echo: Any = False) -> dict[str, Any]:
    return {"url": f"pg://app:{DB}@db", "config": CONFIG, "echo": echo}


def test_the_action_gets_the_values_and_its_result_and_error_do_not(
    make_worker: Any, add_echo: Any
) -> None:
    worker = make_worker(secret_keys=lambda: Keyring.parse(f"{generate_key()},{KEY}"))
    add_echo(worker)
    secrets = _carried((DB, PASSWORD), (CONFIG, {"port": 5432, "user": "app-user"}))

    result = worker.run("tests.action", _input(echo=True), secrets=secrets)
    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result == {"url_ok": True, "port": 5432, "echo": "pg://app:***@db"}

    failed = worker.run("tests.action", _input(echo="raise"), secrets=secrets)
    assert failed.outcome is AttemptStatus.FAILED
    assert failed.error is not None
    assert failed.error.message == "cannot open pg://app:***@db"
    assert PASSWORD not in repr(failed.error)


def test_a_reference_the_dispatch_does_not_carry_fails_the_attempt(
    make_worker: Any, add_echo: Any
) -> None:
    worker = make_worker(secret_keys=lambda: Keyring.parse(KEY))
    add_echo(worker)
    result = worker.run("tests.action", _input(), secrets=_carried((DB, PASSWORD)))
    assert result.outcome is AttemptStatus.FAILED
    assert result.error is not None
    assert result.error.type == "SecretUnavailable"
    assert "secret parameter 'config'" in result.error.message


def test_a_worker_without_the_key_or_with_another_key_says_so(
    make_worker: Any, add_echo: Any
) -> None:
    secrets = _carried((DB, PASSWORD), (CONFIG, {"port": 1}))
    without = make_worker()
    add_echo(without)
    missing = without.run("tests.action", _input(), secrets=secrets)
    assert missing.error is not None
    assert missing.error.type == "SecretKeyError"
    assert "set TREADLE_SECRET_KEY" in missing.error.message

    other = make_worker(secret_keys=lambda: Keyring.parse(generate_key()))
    add_echo(other)
    wrong = other.run("tests.action", _input(), secrets=secrets)
    assert wrong.error is not None
    assert wrong.error.type == "SecretKeyError"
    assert "cannot decrypt keystore secret 'db.password'" in wrong.error.message
    assert "TREADLE_SECRET_KEY" in wrong.error.message


@pytest.fixture
def add_echo(tmp_path: Path, flat_params: Any) -> Any:
    def add(worker: Any) -> None:
        (tmp_path / "echo_action.py").write_text(ECHO)
        worker.add(
            ActionSpec(
                ref="tests.action",
                runner_type=RunnerType.PYTHON,
                entry_point="echo_action.py:main",
                parameters=flat_params(PARAMS),
                base_dir=str(tmp_path),
            )
        )

    return add
