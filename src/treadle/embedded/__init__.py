"""Embedded mode: the scheduler and a worker pool in one process, SQLite, no servers.

It runs the same core, store and worker code as the distributed services; only the
publisher (a thread pool instead of Celery) and the database differ.
"""

from treadle.embedded.runner import EmbeddedRunner, FollowResult

__all__ = ["EmbeddedRunner", "FollowResult"]
