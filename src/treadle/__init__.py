"""Treadle: workflow orchestration with YAML packs, a pure scheduler core and Celery workers.

Applications use :class:`treadle.Client` (or :class:`treadle.ApiClient`, over the HTTP
API) to start and follow runs; operators use the ``treadle`` command. The language lives
in :mod:`treadle.common`, the scheduler in :mod:`treadle.scheduler`, the worker side in
:mod:`treadle.worker`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from treadle.apiclient import ApiClient
    from treadle.client import Client

__all__ = ["ApiClient", "Client", "__version__"]


def __getattr__(name: str) -> Any:
    # The client pulls in SQLAlchemy; import it only when asked for.
    if name == "Client":
        from treadle.client import Client

        return Client
    if name == "ApiClient":
        from treadle.apiclient import ApiClient

        return ApiClient
    raise AttributeError(name)
