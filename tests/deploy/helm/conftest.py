"""The chart rendered once per session: its defaults (with the one Secret they require),
everything on, and the Redis broker variant."""

from __future__ import annotations

import pytest
from tests.deploy.helm.chart import Rendered, render


@pytest.fixture(scope="session")
def defaults() -> Rendered:
    return render("required")


@pytest.fixture(scope="session")
def everything() -> Rendered:
    return render("everything")


@pytest.fixture(scope="session")
def redis() -> Rendered:
    return render("redis")


@pytest.fixture(scope="session", params=["defaults", "everything", "redis"])
def release(request: pytest.FixtureRequest) -> Rendered:
    """Each of the three renders in turn."""
    rendered: Rendered = request.getfixturevalue(request.param)
    return rendered
