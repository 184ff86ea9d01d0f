"""The HTTP API (``treadle api``): runs read and controlled over HTTP with bearer tokens.

Build an app with :func:`treadle.api.app.create_app`; ``docs/api.md`` describes the routes.
Nothing here is imported by the scheduler, the worker or ``treadle.common``
(import-linter keeps it so): the API is an edge, like the CLI.
"""
