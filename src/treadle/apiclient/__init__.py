"""The Python client of the HTTP API: :class:`treadle.Client`'s calls, over ``treadle api``.

An application (or an operator's ``treadle ... --api URL``) that may not reach the
database reaches the API instead, with an API token (``treadle tokens create``)::

    from treadle import ApiClient

    with ApiClient("https://treadle.example.com", token) as client:
        run_id = client.start("examples.hello_world", {"name": "Ada"}, idempotency_key="order-42")
        info = client.wait(run_id, timeout=60)
        print(info.status, info.output)

The methods are :class:`treadle.Client`'s, with the same arguments, return types and
exceptions, wherever the API offers the operation: the API's error answers become the
exceptions the database client raises (``NotFound``, ``ConflictError``/``ControlRefused``,
``ParameterError``, ``ServiceUnavailable``...; see :mod:`treadle.apiclient.http`) and keep
the server's message; ``Unauthenticated`` and ``Forbidden`` are the token's. A client is
safe to share between threads. Only httpx is needed, never the server's web framework.

* :mod:`~treadle.apiclient.client`: the :class:`ApiClient` class;
* :mod:`~treadle.apiclient.http`: one request at a time, error answers as exceptions;
* :mod:`~treadle.apiclient.shapes`: the API's lists as the database client returns them.
"""

from treadle.apiclient.client import DEFAULT_TIMEOUT, ApiClient
from treadle.apiclient.http import ApiError

__all__ = ["DEFAULT_TIMEOUT", "ApiClient", "ApiError"]
