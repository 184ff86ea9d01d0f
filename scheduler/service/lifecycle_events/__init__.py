"""Lifecycle events: CloudEvents of runs, steps and definitions, pushed as they happen.

Off unless ``TREADLE_LIFECYCLE_EVENTS`` is set (``docs/lifecycle-events.md``). Then:

* :mod:`.run_events` and :mod:`.definition_events` write each change's events in the
  transaction of the change (the ``lifecycle_events`` table is their outbox), rendered by
  the workflows/v1 renderings (with what :mod:`.facts` reads) and wrapped by
  :mod:`.cloudevents`;
* :mod:`.pump` (run by a scheduler, :mod:`.publishing_thread`) publishes them in order to
  the topic exchange ``treadle.events`` (:mod:`.exchange`) and hands them to the webhook
  sinks, whose deliveries :mod:`.webhook_posts` signs and posts, retried with backoff;
* :mod:`.views` shows events and deliveries to people (``treadle events ...``).

The modules are imported where they are used: a run service that writes no events loads
:mod:`.decided` only.
"""
