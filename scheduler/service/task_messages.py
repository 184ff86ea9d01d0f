"""One dispatch as a Celery task message (protocol 2), built for the scheduler's producer.

Celery's ``send_task`` resolves the route, merges the task's options, builds the message,
serialises it through kombu's JSON encoder, publishes it and wraps the id in an
``AsyncResult``: about 240 microseconds of the scheduler's CPU per dispatch on this
project's 2-core machine, half of it outside the publish itself. The scheduler knows the
route already (the pinned queue, declared once per connection) and wants no result
object, so :class:`TaskMessages` builds the message and the publisher hands it to its
kombu producer: the headers and properties are Celery's own (``app.amqp.as_task_v2``,
so they follow the installed Celery), the body is ``[[dispatch], {}, embed]`` with the
dispatch serialised once by pydantic. Workers cannot tell the difference.

Celery's ``before_task_publish`` and ``after_task_publish`` signals are sent as
``send_task`` sends them, only when something listens (the tracing hooks of
:mod:`treadle.otel.celery_hooks` start and end a dispatch span there, writing its
``traceparent`` into these headers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from celery import Celery
from celery.signals import after_task_publish, before_task_publish
from celery.utils.nodenames import anon_nodename

from treadle.common.messages import TaskDispatch
from treadle.common.transport import ATTEMPT_HEADER

__all__ = ["HARD_LIMIT_GRACE_SECONDS", "TaskMessage", "TaskMessages"]

#: Seconds between a task's soft time limit (its timeout) and Celery's hard kill.
HARD_LIMIT_GRACE_SECONDS = 5

#: What a Treadle task message embeds: no callbacks, no canvas (the scheduler owns the graph).
_EMBED: dict[str, None] = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_EMBED_JSON = json.dumps(_EMBED)


@dataclass(frozen=True)
class TaskMessage:
    """A task message ready for ``Producer.publish``: JSON body, headers and properties."""

    task: str
    body: str
    headers: dict[str, Any]
    properties: dict[str, Any]
    #: The dispatch as the body holds it, for the publish signals' receivers only.
    dispatch: TaskDispatch

    @cached_property
    def signal_body(self) -> tuple[Any, ...]:
        """The body as ``send_task`` gives it to the signals, ``(args, kwargs, embed)``:
        built once, and only when a receiver listens."""
        return ([self.dispatch.model_dump(mode="json")], {}, dict(_EMBED))


class TaskMessages:
    """Builds the task messages of one scheduler process (its node name as their origin)."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._origin = anon_nodename()

    def build(self, task: str, dispatch: TaskDispatch, priority: int | None) -> TaskMessage:
        """The message for ``dispatch`` as task ``task``: id and ``treadle-attempt`` header =
        its attempt, Celery's soft/hard time limits from its timeout, ``argsrepr`` naming
        the action and attempt, never the input (it may hold secrets)."""
        attempt_id = dispatch.attempt_id
        timeout = dispatch.timeout_seconds
        message = self._app.amqp.as_task_v2(
            attempt_id,
            task,
            args=(),
            kwargs={},
            time_limit=None if timeout is None else timeout + HARD_LIMIT_GRACE_SECONDS,
            soft_time_limit=timeout,
            origin=self._origin,
            ignore_result=True,
            argsrepr=f"[{dispatch.action_ref} attempt {attempt_id}: input not shown]",
            kwargsrepr="{}",
        )
        headers: dict[str, Any] = message.headers
        headers[ATTEMPT_HEADER] = attempt_id
        properties: dict[str, Any] = dict(message.properties)
        if priority is not None:
            properties["priority"] = priority
        body = f"[[{dispatch.model_dump_json()}], {{}}, {_EMBED_JSON}]"
        return TaskMessage(task, body, headers, properties, dispatch)


def announce(message: TaskMessage, routing_key: str) -> None:
    """``before_task_publish``, when anything listens (as ``send_task`` sends it)."""
    if before_task_publish.receivers:
        before_task_publish.send(
            sender=message.task,
            body=message.signal_body,
            exchange="",
            routing_key=routing_key,
            headers=message.headers,
            properties=message.properties,
            declare=(),
            retry_policy=None,
        )


def published(message: TaskMessage, routing_key: str) -> None:
    """``after_task_publish``, when anything listens."""
    if after_task_publish.receivers:
        after_task_publish.send(
            sender=message.task,
            body=message.signal_body,
            headers=message.headers,
            exchange="",
            routing_key=routing_key,
        )
