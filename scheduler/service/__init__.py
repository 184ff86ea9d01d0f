"""The scheduler's impure shell: definitions, applying events, the outbox relay, timers.

The same modules serve the embedded runner (SQLite, an in-process worker pool) and the
distributed scheduler (PostgreSQL, Celery); only the publisher and the clock differ.
"""
