"""``treadle flower`` without any service: its options, and what it refuses before starting.

Its help lists the options; without Flower installed it exits 2 naming the extra to
install; credentials and a management API URL that are malformed are refused with exit 2,
without echoing what may be a secret. (``tests/distributed/flower`` runs it for real.)
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from treadle.cli import flower_cmd


def test_help_lists_the_options(treadle: Any) -> None:
    treadle.in_process = False  # Flower keeps parsed options in a module of its own
    treadle.env["COLUMNS"] = "200"  # rich would cut long option names on a narrow terminal

    shown = treadle("flower", "--help", code=0).stdout

    for option in (
        "--port",
        "--address",
        "--url-prefix",
        "--basic-auth",
        "--broker-api",
        "--enable-events",
        "--no-enable-events",
    ):
        assert option in shown
    assert "Run Flower on Treadle's Celery app and broker" in shown
    assert "127.0.0.1" in shown  # the address it listens on by default


def test_without_flower_installed_it_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "flower" or m.startswith("flower.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flower", None)  # `import flower` now fails
    app = typer.Typer()
    app.callback()(lambda: None)
    flower_cmd.register(app)

    done = CliRunner().invoke(app, ["flower"])

    assert done.exit_code == 2
    assert done.stderr == (
        "error: Flower is not installed: install Treadle's flower extra, "
        "for example `pip install 'treadle[flower]'`\n"
    )


def test_basic_auth_without_a_password_is_refused_without_echoing_it(treadle: Any) -> None:
    treadle.in_process = False
    treadle.env["TREADLE_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1//"  # never reached

    done = treadle("flower", "--basic-auth", "ops-s3cret", code=2)

    assert "--basic-auth expects user:password" in done.stderr
    assert "ops-s3cret" not in done.output


def test_a_broker_api_that_is_not_an_http_url_is_refused(treadle: Any) -> None:
    treadle.in_process = False
    treadle.env["TREADLE_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1//"  # never reached

    done = treadle("flower", "--broker-api", "amqp://ops:s3cret@rabbit:15672/api/", code=2)

    assert "--broker-api is not a management API URL: invalid scheme 'amqp'" in done.stderr
    assert "s3cret" not in done.output
